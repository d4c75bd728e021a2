"""Markup that hostile senders hide from a naive tokenizer but browsers read (issue 10, item 2).

Each case is written as an attacker would: a payment request that a mail client builds into
a script element or a microdata item, wrapped in HTML that a simpler tokenizer reads as a
comment or as raw text. The scanner must find exactly what Lexbor, a conformant HTML5
parser, finds; crosscheck.py compares the two in production.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from inboxpay.invoice.markup import find_payment_markup, remove_blocks

INVOICE = {"@context": "https://schema.org", "@type": "Invoice", "identifier": "EVIL-1"}
LD = f'<script type="application/ld+json">{json.dumps(INVOICE)}</script>'
ITEM = (
    '<div itemscope itemtype="https://schema.org/Invoice">'
    '<span itemprop="identifier">EVIL-1</span></div>'
)


def browser_scripts(html: str) -> int:
    """How many ld+json scripts with the invoice a conformant parser builds."""
    return sum(
        1
        for script in LexborHTMLParser(html).css("script")
        if script.attributes.get("type") == "application/ld+json"
        and "EVIL-1" in script.text(deep=True)
    )


def found(html: str) -> int:
    return sum(1 for b in find_payment_markup(html) if b.data.get("identifier") == "EVIL-1")


def assert_read_as_a_browser_reads(html: str, expected: int) -> None:
    assert browser_scripts(html) == expected, "the test case itself is wrong"
    assert found(html) == expected


# --- comments: every WHATWG comment state --------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (f"<!-- hidden? --!>{LD}<!-- -->", 1),  # "--!>" ends a comment
        (f"<!-- a --!><!-- b --!>{LD}", 1),
        (f"<!-->{LD}", 1),  # an empty comment, closed by its own "--"
        (f"<!--->{LD}", 1),
        (f"<!---->{LD}", 1),
        (f"<!----!>{LD}", 1),
        (f"<!-- <!-- nested -->{LD}", 1),
        (f"<!-- a --!-->{LD}", 1),  # comment end bang, then a dash: "-->" closes
        (f"<!--!>{LD}<!-- -->", 0),  # not closed: "--!>" needs content before it
        (f"<!---!>{LD}<!-- -->", 0),
        (f"<!-- a --!- >{LD}<!-- -->", 0),
        (f"<!-- a -- >{LD}<!-- -->", 0),
        (f"<!-- never closed {LD}", 0),
        (f"<!>{LD}", 1),  # bogus comments end at the first ">"
        (f"<?xml ?>{LD}", 1),
        (f"</ not a tag>{LD}", 1),
        (f'<!DOCTYPE html PUBLIC "a>b">{LD}', 1),
    ],
)
def test_comment_states(html: str, expected: int) -> None:
    assert_read_as_a_browser_reads(html, expected)


def test_bang_comment_end_no_longer_hides_markup() -> None:
    # The 2024 trick: a filter waiting for "-->" treats everything up to the next one as
    # a comment, but a browser closed it at "--!>".
    html = f"<p>Hi</p><!-- tracking --!>{LD}<p>Bye <!-- x --></p>"
    [block] = find_payment_markup(html)
    assert remove_blocks(html, [block]) == "<p>Hi</p><!-- tracking --!><p>Bye <!-- x --></p>"


# --- foreign content: SVG and MathML ---------------------------------------------------

RAW_TEXT_TAGS = ["style", "title", "textarea", "xmp", "iframe", "noembed", "noframes"]


@pytest.mark.parametrize("tag", RAW_TEXT_TAGS)
@pytest.mark.parametrize("root", ["svg", "math"])
def test_raw_text_tags_are_plain_elements_in_foreign_content(root: str, tag: str) -> None:
    html = f"<p>x</p><{root}><{tag}>{LD}</{tag}></{root}>"
    assert_read_as_a_browser_reads(html, 1)


@pytest.mark.parametrize("tag", RAW_TEXT_TAGS)
def test_raw_text_tags_still_hide_in_html(tag: str) -> None:
    assert_read_as_a_browser_reads(f"<{tag}>{LD}</{tag}>", 0)


def test_svg_script_is_a_plain_element_with_ld_json_children() -> None:
    # A JavaScript <script> in SVG holds markup: the ld+json script inside is real.
    assert_read_as_a_browser_reads(f"<svg><script>{LD}</script></svg>", 1)


def test_svg_ld_json_script_text_is_read_with_character_references() -> None:
    body = json.dumps(INVOICE).replace('"', "&quot;")
    html = f'<svg><script type="application/ld+json">{body}<g></g></script></svg>'
    assert_read_as_a_browser_reads(html, 1)
    [block] = find_payment_markup(html)
    assert html[block.start : block.end].endswith("</script>")
    assert find_payment_markup(remove_blocks(html, [block])) == []


@pytest.mark.parametrize(
    "point",
    [
        "<svg><foreignObject>",
        "<svg><desc>",
        "<svg><title>",
        "<math><mi>",
        "<math><mtext>",
        '<math><annotation-xml encoding="text/html">',
        '<math><annotation-xml encoding="APPLICATION/XHTML+XML">',
    ],
)
def test_integration_points_are_html_again(point: str) -> None:
    # Inside an integration point a start tag is HTML: <style> is raw text again...
    assert_read_as_a_browser_reads(f"{point}<style>{LD}</style>", 0)
    # ...and closing it returns to foreign content, where it is not.
    name = point.rsplit("<", 1)[1].split()[0].rstrip(">")
    assert_read_as_a_browser_reads(f"{point}</{name}><style>{LD}</style>", 1)


def test_annotation_xml_without_html_encoding_is_foreign() -> None:
    assert_read_as_a_browser_reads(f"<math><annotation-xml><style>{LD}</style>", 1)
    assert_read_as_a_browser_reads(f"<math><annotation-xml><svg><style>{LD}</style>", 1)


@pytest.mark.parametrize("breakout", ["<p>", "<div>", "<b>", "<span>", "<table>", "<br>", "</p>"])
def test_breakout_tags_leave_foreign_content(breakout: str) -> None:
    # After the breakout tag the tokenizer is in HTML again: <style> hides once more.
    assert_read_as_a_browser_reads(f"<svg><g>{breakout}<style>{LD}</style>", 0)
    # ...and a new <svg> is foreign again.
    assert_read_as_a_browser_reads(f"<svg>{breakout}<svg><title>{LD}</title>", 1)


def test_font_breaks_out_only_with_its_presentational_attributes() -> None:
    assert_read_as_a_browser_reads(f'<svg><font color="red"><style>{LD}</style>', 0)
    assert_read_as_a_browser_reads(f"<svg><font><style>{LD}</style>", 1)


@pytest.mark.parametrize(
    "html",
    [
        # </body> only switches insertion mode: the stack, and so <svg>, stays.
        f"<svg></body><style>{LD}</style>",
        f"<svg></html><style>{LD}</style>",
        # </td> outside a table closes nothing (a td start tag was ignored there).
        f"<td><svg><desc></td></desc><style>{LD}</style>",
        # An end tag stops at a special element (the div): </span> is ignored, so
        # </desc> meets the div and is ignored too; the CDATA is a bogus comment.
        f"<div><svg><desc><span><div></span></desc><![CDATA[>{LD}]]></svg>",
        # A late <body> makes no element: it cannot end foreign content.
        f"<math><mtext><body><![CDATA[>]]><mi></mi></mtext><style>{LD}</style>",
    ],
)
def test_end_tags_move_in_and_out_of_foreign_content_as_in_a_browser(html: str) -> None:
    assert_read_as_a_browser_reads(html, 1)


def test_table_cells_close_through_foreign_content() -> None:
    html = f"<table><tr><td><svg><desc></td><td><style>{LD}</style></table>"
    assert_read_as_a_browser_reads(html, 0)


def test_cdata_sections_exist_only_in_foreign_content() -> None:
    assert_read_as_a_browser_reads(f"<![CDATA[>{LD}]]>", 1)  # HTML: a bogus comment
    assert_read_as_a_browser_reads(f"<svg><![CDATA[>{LD}]]></svg>", 0)  # SVG: text


def test_microdata_in_foreign_raw_text_tags() -> None:
    html = f"<svg><style>{ITEM}</style></svg>"
    [block] = find_payment_markup(html)
    assert block.kind == "microdata" and block.data["identifier"] == "EVIL-1"


# --- script data: escaped and double-escaped states ------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # "<!--<script>" double-escapes: the first </script> does not end the script, and
        # the "<!--" after it is script text, not a comment swallowing the invoice.
        (f"<script><!--<script></script><!--</script>{LD}", 1),
        (f"<script>if (a <!--<script >) </script> <!-- </script>{LD}", 1),
        (f"<script><!--<SCRIPT/></SCRIPT><!--</script>{LD}", 1),
        # "-->" returns to plain script data, where </script> ends the script.
        (f"<script><!--<script>--></script>{LD}", 1),
        # In the escaped (not double-escaped) state </script> does end it.
        (f"<script><!-- x </script>{LD}", 1),
        # "<scripts" is not "<script": no double escape.
        (f"<script><!--<scripts></script>{LD}", 1),
        # Still double-escaped at the end: the invoice is script text.
        (f"<script><!--<script>{LD}", 0),
        (f"<script><!--<script></script>{LD}", 0),
    ],
)
def test_script_data_escape_states(html: str, expected: int) -> None:
    assert_read_as_a_browser_reads(html, expected)


@pytest.mark.parametrize("tag", ["script", "style"])
def test_end_tag_names_match_ascii_case_insensitively_only(tag: str) -> None:
    # re.IGNORECASE alone matches U+017F (long s) to "s": that "</script>" is no end tag.
    fake = "</\u017f" + tag[1:] + ">"
    html = f"<{tag}>x{fake}<!--</{tag}>{LD}"
    assert_read_as_a_browser_reads(html, 1)


def test_unfinished_end_tag_at_the_end_is_text() -> None:
    html = f"<p>x</p>{LD[:-1]}"  # "</script" without ">" at the end of the document
    assert browser_scripts(html) == 1
    [block] = find_payment_markup(html)
    assert block.end == len(html)


# --- properties: any input --------------------------------------------------------------

FRAGMENTS = [
    "<svg>", "</svg>", "<math>", "</math>", "<style>", "</style>", "<title>", "</title>",
    "<textarea>", "</textarea>", "<xmp>", "</xmp>", "<noembed>", "<noframes>", "<iframe>",
    "<script>", "</script>", "<!--", "-->", "--!>", "<!-->", "<![CDATA[", "]]>", ">",
    "<p>", "</p>", "<div>", "</div>", "<b>", "</b>", "<span>", "</span>", "<desc>",
    "</desc>", "<foreignObject>", "</foreignObject>", "<mi>", "</mi>", "<mtext>",
    '<annotation-xml encoding="text/html">', "</annotation-xml>", "<table>", "</table>",
    "<tr>", "<td>", "</td>", "</body>", "<body>", '<font color="red">', "<a>", "</a>",
    "<li>", "</br>", "<svg/>", "<g>", "</g>", "<mglyph>", "<noscript>", "<button>",
    "<h1>", "</h2>", "<image>", "<caption>", "</tr>", "<object>", "</object>", "x", "'",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.integers(0, 12))
def test_scanner_agrees_with_a_conformant_parser(fragments: list[str], at: int) -> None:
    fragments.insert(min(at, len(fragments)), LD)
    html = "".join(fragments)
    assert found(html) == browser_scripts(html), html


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>!-/?[]'\"= ascriptSVGtylem\u017f\x00")), max_size=200)
)
def test_any_text_tokenizes_without_error(html: str) -> None:
    for block in find_payment_markup(html + LD):
        assert 0 <= block.start <= block.end <= len(html + LD)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script><!--" + "<script>-" * 200_000,
        "<script><!--" + "<script></script>" * 100_000,
        "<svg>" + "<![CDATA[" * 200_000,
        "<svg>" * 200_000 + LD,
        "<svg><g>" * 100_000 + "</x>" * 100_000,
        "<math><mi>" * 100_000 + "<style>" + LD,
        "<!--" + "--!" * 300_000 + LD,
        "<table>" + "<td><svg><desc>" * 50_000 + "</td>" * 50_000,
        "<div>" * 1000 + "</span>" * 200_000 + "</div>" * 200_000,
    ],
)
def test_hostile_differential_input_is_linear(hostile: str) -> None:
    started = time.perf_counter()
    find_payment_markup(hostile)
    assert time.perf_counter() - started < 5


def _cost(html: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        find_payment_markup(html)
        best = min(best, time.perf_counter() - started)
    return best


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=6))
def test_cost_grows_linearly_with_repetition(fragments: list[str]) -> None:
    unit = "".join(fragments)
    small, large = _cost(unit * 2_000 + LD), _cost(unit * 8_000 + LD)
    assert large < 10 * small + 0.05, (unit, small, large)  # 4x input: about 4x time
