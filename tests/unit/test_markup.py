"""Finding payment markup (JSON-LD and microdata) in HTML, and cutting it out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inboxpay.invoice.markup import (
    MarkupBlock,
    find_payment_markup,
    remove_blocks,
    schema_types,
)

DATA = Path(__file__).parent.parent / "data" / "invoices"

INVOICE = {
    "@context": "https://schema.org",
    "@type": "Invoice",
    "identifier": "A-1",
    "provider": {"@type": "Organization", "name": "Acme"},
    "totalPaymentDue": {"@type": "PriceSpecification", "price": "70.00", "priceCurrency": "USD"},
    "paymentDueDate": "2026-12-01",
    "url": "https://pay.acme.example/A-1",
}


def ld(obj: object, type_attr: str = "application/ld+json") -> str:
    return f'<script type="{type_attr}">{json.dumps(obj)}</script>'


def page(*middle: str) -> str:
    return "<html><body><p>before</p>" + "".join(middle) + "<p>after</p></body></html>"


def spans(html: str) -> list[str]:
    return [html[b.start : b.end] for b in find_payment_markup(html)]


def only(html: str) -> MarkupBlock:
    [block] = find_payment_markup(html)
    return block


# --- fixtures ----------------------------------------------------------------------------


def fixture(name: str) -> str:
    return (DATA / f"{name}.html").read_text("utf-8")


@pytest.mark.parametrize(
    ("name", "kind", "opening", "closing"),
    [
        ("xero_action", "action", '<script type="application/ld+json">', "</script>"),
        (
            "freshbooks_invoice",
            "invoice",
            '<SCRIPT TYPE="Application/LD+JSON; charset=utf-8">',
            "</SCRIPT>",
        ),
        (
            "microdata_invoice",
            "microdata",
            '<DIV ITEMSCOPE ITEMTYPE="https://schema.org/Invoice/"',
            "</DIV>",
        ),
    ],
)
def test_fixtures(name: str, kind: str, opening: str, closing: str) -> None:
    html = fixture(name)
    block = only(html)
    assert block.kind == kind
    assert html[block.start :].startswith(opening)
    assert html[: block.end].endswith(closing)
    stripped = remove_blocks(html, [block])
    assert find_payment_markup(stripped) == []
    assert stripped == html[: block.start] + html[block.end :]


def test_newsletter_has_no_payment_markup() -> None:
    assert find_payment_markup(fixture("newsletter")) == []


def test_plain_html_without_scripts_or_items() -> None:
    assert find_payment_markup("<p>Invoice INV-1 from schema.org fans: $70.00</p>") == []
    assert find_payment_markup("") == []


# --- JSON-LD forms -----------------------------------------------------------------------


def test_bare_invoice() -> None:
    html = page(ld(INVOICE))
    block = only(html)
    assert block.kind == "invoice"
    assert block.data == INVOICE
    assert html[block.start : block.end] == ld(INVOICE)


def test_action_request() -> None:
    request = {
        "@context": "http://schema.org",
        "@type": "ActionRequest",
        "action": {"@type": "PaymentAction", "merchantId": "M-1", "entity": INVOICE},
    }
    block = only(page(ld(request)))
    assert (block.kind, block.data) == ("action", request)


@pytest.mark.parametrize("action_type", ["PaymentAction", "PayAction", "schema:PayAction"])
@pytest.mark.parametrize("key", ["entity", "object"])
def test_top_level_payment_action(action_type: str, key: str) -> None:
    action = {"@context": "https://schema.org", "@type": action_type, key: INVOICE}
    block = only(page(ld(action)))
    assert (block.kind, block.data) == ("action", action)


@pytest.mark.parametrize(
    "type_value",
    [
        "Invoice",
        "schema:Invoice",
        "http://schema.org/Invoice",
        "https://schema.org/Invoice/",
        "https://www.schema.org/Invoice",
        ["Thing", "Invoice"],
        "invoice",
    ],
)
def test_type_spellings(type_value: object) -> None:
    block = only(ld({**INVOICE, "@type": type_value}))
    assert block.kind == "invoice"
    assert "Invoice" in schema_types(block.data)


def test_array_and_graph() -> None:
    org = {"@type": "Organization", "name": "Acme"}
    assert [b.data for b in find_payment_markup(ld([org, INVOICE]))] == [INVOICE]
    second = {**INVOICE, "identifier": "A-2"}
    graph = {"@context": "https://schema.org", "@graph": [org, INVOICE, second]}
    html = ld(graph)
    blocks = find_payment_markup(html)
    assert [b.data["identifier"] for b in blocks] == ["A-1", "A-2"]
    assert all((b.start, b.end) == (0, len(html)) for b in blocks)  # one script, deleted whole
    assert remove_blocks(html, blocks) == ""


def test_graph_references_are_resolved_and_not_reported_twice() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@id": "#inv", **INVOICE},
            {"@id": "#pay", "@type": "PaymentAction", "entity": {"@id": "#inv"}},
            {"@id": "#org", "@type": "Organization", "name": "Acme"},
            {"@type": "ActionRequest", "action": {"@id": "#pay"}},
        ],
    }
    block = only(ld(graph))
    assert block.kind == "action"
    assert block.data["action"] == {
        "@id": "#pay",
        "@type": "PaymentAction",
        "entity": {"@id": "#inv", **INVOICE},
    }


def test_reference_cycles_terminate() -> None:
    graph = {
        "@graph": [
            {"@id": "#a", "@type": "Invoice", "partOf": {"@id": "#b"}},
            {"@id": "#b", "@type": "Thing", "hasPart": {"@id": "#a"}},
        ]
    }
    block = only(ld(graph))
    assert block.data["partOf"]["hasPart"]["@id"] == "#a"  # type: ignore[index]


def test_action_request_that_is_not_a_payment() -> None:
    view = {"@type": "ActionRequest", "action": {"@type": "ViewAction", "target": "https://x"}}
    assert find_payment_markup(ld(view)) == []


@pytest.mark.parametrize(
    "document",
    [
        # A payment action without an Invoice: still a payment request, unreadable.
        {
            "@type": "ActionRequest",
            "action": {"@type": "PaymentAction", "entity": {"@type": "Order"}},
        },
        {"@type": "PayAction", "price": "70.00"},
        # An Invoice where we do not look for one.
        {"@type": "Order", "partOfInvoice": {"@type": "Invoice", "totalPaymentDue": "$9"}},
        {"@type": "EmailMessage", "potentialAction": [{"@type": "PaymentAction"}]},
    ],
)
def test_payment_types_in_other_shapes_are_reported_empty(document: object) -> None:
    html = page(ld(document))
    block = only(html)
    assert block.data == {}
    assert html[block.start : block.end] == ld(document)


@pytest.mark.parametrize(
    ("source", "reported", "kind"),
    [
        ('{"@context": "https://schema.org", "@type": "Invoice", }', True, "invoice"),
        ("{'@type': 'schema:PaymentAction'}", True, "action"),
        ('{"@context": "http://schema.org", "@type": "Invoice" "url": "x"', True, "invoice"),
        ('{"@context": "https://schema.org", "@type": "Event", }', False, ""),
        ('{"name": "Invoice reminder", }', False, ""),
        ("not json at all", False, ""),
    ],
)
def test_unparseable_json_ld(source: str, reported: bool, kind: str) -> None:
    html = f'<script type="application/ld+json">{source}</script>'
    blocks = find_payment_markup(html)
    if reported:
        assert [(b.start, b.end, b.kind, b.data) for b in blocks] == [(0, len(html), kind, {})]
    else:
        assert blocks == []


def test_hostile_json() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert find_payment_markup(f'<script type="application/ld+json">{deep}</script>') == []
    deep_invoice = '{"@type": "Invoice", "x": ' + deep + "}"
    html = f'<script type="application/ld+json">{deep_invoice}</script>'
    assert [b.data for b in find_payment_markup(html)] == [{}]
    huge_int = '{"@type": "Invoice", "price": ' + "9" * 5000 + "}"
    assert [b.data for b in find_payment_markup(ld_raw(huge_int))] == [{}]
    catalogue = json.dumps({"@type": "ItemList", "items": [{"@type": "Thing"}] * 20_000})
    assert find_payment_markup(ld_raw(catalogue)) == []
    too_many = json.dumps({"@type": "Thing", "items": [0] * 250_000})
    assert [b.data for b in find_payment_markup(ld_raw(too_many))] == [{}]  # not vouched for


def ld_raw(source: str) -> str:
    return f'<script type="application/ld+json">{source}</script>'


def test_non_finite_numbers_are_kept_for_the_parser() -> None:
    block = only(ld_raw('{"@type": "Invoice", "totalPaymentDue": {"price": NaN}}'))
    price = block.data["totalPaymentDue"]["price"]  # type: ignore[index]
    assert price.is_nan()


@pytest.mark.parametrize(
    "type_attr",
    [
        "application/ld+json",
        "APPLICATION/LD+JSON",
        " application/ld+json ",
        "application/ld+json; charset=utf-8",
        "application/ld+json ;charset=UTF-8",
    ],
)
def test_script_type_matching(type_attr: str) -> None:
    assert only(ld(INVOICE, type_attr)).kind == "invoice"


@pytest.mark.parametrize(
    "script",
    [
        f"<script>{json.dumps(INVOICE)}</script>",
        f'<script type="application/json">{json.dumps(INVOICE)}</script>',
        f'<script type="text/javascript">{json.dumps(INVOICE)}</script>',
        f"<!-- {ld(INVOICE)} -->",
        f"<textarea>{ld(INVOICE)}</textarea>",
        f"<style>{ld(INVOICE)}</style>",
    ],
)
def test_not_json_ld(script: str) -> None:
    assert find_payment_markup(page(script)) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("<!--", "-->"),
        ("<!--\n", "\n//-->"),
        ("<![CDATA[", "]]>"),
        ("//<![CDATA[\n", "\n//]]>"),
        ("/*<![CDATA[*/", "/*]]>*/"),
        ("<!--<![CDATA[", "]]>-->"),
        ("\n\n   ", "   \n\n"),
    ],
)
def test_wrappers_inside_the_script(before: str, after: str) -> None:
    html = f'<script type="application/ld+json">{before}{json.dumps(INVOICE)}{after}</script>'
    assert only(html).data == INVOICE


def test_attributes_in_any_order_and_quoting() -> None:
    body = json.dumps(INVOICE)
    for tag in (
        "<script id=x type=application/ld+json>",
        "<script type='application/ld+json' async>",
        '<SCRIPT\n  data-x="a>b"\n  TYPE = "application/ld+json"\n>',
        '<script type="application/ld&#43;json">',
    ):
        html = f"<p>a</p>{tag}{body}</script ><p>b</p>"
        block = only(html)
        assert html[block.start : block.end] == f"{tag}{body}</script >", tag


def test_script_end_is_found_by_name_only() -> None:
    body = json.dumps({**INVOICE, "description": "<b>not a tag</b> </scriptx>"})
    html = f'<script type="application/ld+json">{body}</script><p>after</p>'
    block = only(html)
    assert html[block.end :] == "<p>after</p>"


def test_unterminated_script_runs_to_the_end() -> None:
    html = f'<p>x</p><script type="application/ld+json">{json.dumps(INVOICE)}'
    block = only(html)
    assert (block.start, block.end) == (8, len(html))


# --- microdata ---------------------------------------------------------------------------

MICRODATA = """<div itemscope itemtype="{itemtype}">
  <span itemprop="identifier">A-1</span>
  <div itemprop="provider" itemscope itemtype="https://schema.org/Organization">
    <span itemprop="name">Acme
       Corp</span>
    <span itemprop="url">https://acme.example</span>
  </div>
  <div itemprop="totalPaymentDue" itemscope itemtype="https://schema.org/PriceSpecification">
    <span itemprop="price">$70.00</span><meta itemprop="priceCurrency" content="USD">
  </div>
  <div><div>nested <div>same-named</div> tags<br><img src="x.png"><hr></div></div>
  <time itemprop="paymentDueDate" datetime="2026-12-01">Dec 1</time>
  <a itemprop="url" href="https://pay.acme.example/A-1?x=1&amp;currency=USD&lang=en">Pay</a>
</div>"""

MICRODATA_DATA = {
    "@type": "Invoice",
    "identifier": "A-1",
    "provider": {"@type": "Organization", "name": "Acme Corp", "url": "https://acme.example"},
    "totalPaymentDue": {"@type": "PriceSpecification", "price": "$70.00", "priceCurrency": "USD"},
    "paymentDueDate": "2026-12-01",
    "url": "https://pay.acme.example/A-1?x=1&currency=USD&lang=en",
}


@pytest.mark.parametrize(
    "itemtype",
    [
        "https://schema.org/Invoice",
        "http://schema.org/Invoice",
        "http://schema.org/Invoice/",
        "https://schema.org/Invoice/",
        "HTTPS://SCHEMA.ORG/Invoice",
        "https://example.com/Thing https://schema.org/Invoice",
    ],
)
def test_microdata(itemtype: str) -> None:
    element = MICRODATA.format(itemtype=itemtype)
    html = page("<div>", element, "<div>trailing</div></div>")
    block = only(html)
    assert block.kind == "microdata"
    assert html[block.start : block.end] == element
    assert "Invoice" in schema_types(block.data)
    assert {**block.data, "@type": "Invoice"} == MICRODATA_DATA
    assert remove_blocks(html, [block]) == page("<div>", "<div>trailing</div></div>")


def test_microdata_uppercase_and_quoting() -> None:
    html = (
        "<TABLE ITEMTYPE='http://schema.org/Invoice' ITEMSCOPE><TR><TD ITEMPROP=identifier>7"
        "</TD></TR></TABLE><P>after</P>"
    )
    block = only(html)
    assert html[block.end :] == "<P>after</P>"
    assert block.data == {"@type": "Invoice", "identifier": "7"}


def test_microdata_property_values() -> None:
    html = """<div itemscope itemtype="https://schema.org/Invoice">
      <span itemprop="a" content="from content">shown text</span>
      <link itemprop="b" href="https://b.example">
      <img itemprop="c" src="https://c.example/x.png">
      <data itemprop="d" value="42">forty-two</data>
      <time itemprop="e">2026-12-01</time>
      <span itemprop="f g">two names</span>
      <span itemprop="h">one</span><span itemprop="h">two</span>
      <span itemprop="i">caf&eacute; &amp; <b>bar</b>&nbsp;!</span>
      <div itemprop="j" itemscope><span itemprop="k">untyped</span></div>
      <div itemscope itemtype="https://schema.org/Thing"><span itemprop="l">not ours</span></div>
      <meta itemprop="m">
    </div>"""
    assert only(html).data == {
        "@type": "Invoice",
        "a": "from content",
        "b": "https://b.example",
        "c": "https://c.example/x.png",
        "d": "42",
        "e": "2026-12-01",
        "f": "two names",
        "g": "two names",
        "h": ["one", "two"],
        "i": "café & bar\xa0!",
        "j": {"k": "untyped"},
        "m": "",
    }


def test_microdata_other_types_are_not_payments() -> None:
    html = (
        '<div itemscope itemtype="https://schema.org/Product"><span itemprop="name">x</span></div>'
    )
    assert find_payment_markup(html) == []
    assert (
        find_payment_markup('<div itemtype="https://schema.org/Invoice">no itemscope</div>') == []
    )


def test_microdata_only_the_outermost_invoice() -> None:
    inner = '<div itemprop="partOf" itemscope itemtype="https://schema.org/Invoice">i</div>'
    html = f'<div itemscope itemtype="https://schema.org/Invoice">{inner}</div>'
    block = only(html)
    assert (block.start, block.end) == (0, len(html))
    assert block.data == {"@type": "Invoice", "partOf": {"@type": "Invoice"}}


def test_microdata_unclosed_root_ends_with_its_parent() -> None:
    html = '<section><div itemscope itemtype="https://schema.org/Invoice">x</section><p>after</p>'
    block = only(html)
    assert html[block.start : block.end] == '<div itemscope itemtype="https://schema.org/Invoice">x'
    html = '<body><div itemscope itemtype="https://schema.org/Invoice">x<p>to the end'
    assert only(html).end == len(html)


@pytest.mark.parametrize(
    ("root", "follower"),
    [
        ('<p itemscope itemtype="https://schema.org/Invoice">x<b>y', "<div>next</div>"),
        ('<p itemscope itemtype="https://schema.org/Invoice">x', "<p>next</p>"),
        ('<li itemscope itemtype="https://schema.org/Invoice">x', "<li>next</li>"),
    ],
)
def test_microdata_implied_end_tags(root: str, follower: str) -> None:
    html = f"<ul>{root}{follower}</ul>"
    block = only(html)
    assert html[block.start : block.end] == root


def test_microdata_stray_end_tags_do_not_close_the_root() -> None:
    html = '<div itemscope itemtype="https://schema.org/Invoice"></span></p>x</div>after'
    assert html[only(html).end :] == "after"


def test_microdata_in_comments_and_raw_text_is_ignored() -> None:
    item = '<div itemscope itemtype="https://schema.org/Invoice">x</div>'
    for wrapped in (f"<!-- {item} -->", f"<textarea>{item}</textarea>", f"<title>{item}</title>"):
        assert find_payment_markup(page(wrapped)) == []


def test_microdata_and_json_ld_together() -> None:
    item = '<div itemscope itemtype="https://schema.org/Invoice">' + ld(INVOICE) + "</div>"
    html = page(ld(INVOICE), item)
    blocks = find_payment_markup(html)
    assert [b.kind for b in blocks] == ["invoice", "microdata", "invoice"]
    assert remove_blocks(html, blocks) == page()


# --- tokeniser details -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://x/?a=1&currency=USD", "https://x/?a=1&currency=USD"),  # not "&curren" + "cy"
        ("https://x/?a=1&copy=2", "https://x/?a=1&copy=2"),
        ("https://x/?a=1&amp;b=2", "https://x/?a=1&b=2"),
        ("https://x/?a=1&amp b", "https://x/?a=1& b"),
        ("https://x/&#x41;&#65;&#0;", "https://x/AA\ufffd"),
        ("https://x/&bogus;", "https://x/&bogus;"),
    ],
)
def test_attribute_character_references(href: str, expected: str) -> None:
    link = f'<a itemprop="url" href="{href}">p</a>'
    html = f'<div itemscope itemtype="https://schema.org/Invoice">{link}</div>'
    assert only(html).data["url"] == expected


def test_odd_markup_does_not_break_the_scan() -> None:
    odd = (
        "<p>1 < 2 and <3</p><!----><!--><!---><?php echo 1 ?><!DOCTYPE x></ nope><//>"
        "<![CDATA[ <div> ]]><a href=unquoted>"
    )
    html = odd + "</a>" + ld(INVOICE)
    assert only(html).kind == "invoice"
    # An unterminated quote runs to the end, as in a browser: what follows is not markup.
    assert find_payment_markup("<a href='x>" + ld(INVOICE)) == []
    assert find_payment_markup("<div a=") == []
    assert find_payment_markup('<script type="application/ld+json"') == []


# --- remove_blocks -----------------------------------------------------------------------


def test_remove_blocks_merges_and_sorts() -> None:
    html = "0123456789"
    blocks = [
        MarkupBlock(6, 8, "invoice", {}),
        MarkupBlock(1, 3, "invoice", {}),
        MarkupBlock(2, 4, "x", {}),
    ]
    assert remove_blocks(html, blocks) == "04589"
    assert remove_blocks(html, [MarkupBlock(2, 4, "x", {})] * 2) == "01456789"
    assert remove_blocks(html, []) == html


def test_remove_blocks_rejects_spans_outside_the_html() -> None:
    with pytest.raises(ValueError, match="outside"):
        remove_blocks("abc", [MarkupBlock(1, 9, "x", {})])


# --- cost on hostile input ---------------------------------------------------------------


MICRODATA_INVOICE = '<div itemscope itemtype="https://schema.org/Invoice">'


# Each runs in linear time (a quadratic parser would not finish within the suite's run);
# what is asserted is what the scan finds in them.
@pytest.mark.parametrize(
    "filler",
    [
        "<div>" * 200_000,
        '<div itemscope itemtype="https://schema.org/Invoice">'
        + "<span itemprop=x>y" * 5_000
        + "</span>" * 5_000,
        "<p>" + "<b>" * 1000 + "<div>" * 100_000,
        "<" * 1_000_000,
        "<a " + "x=" * 500_000 + ">",
        "<ul>" + "<li>" * 100_000 + "</ul>" * 1000,
    ],
)
def test_hostile_html_before_an_invoice_still_yields_the_invoice(filler: str) -> None:
    hostile = filler + ld(INVOICE)
    [block] = [b for b in find_payment_markup(hostile) if b.kind == "invoice"]
    assert (block.start, block.end) == (len(filler), len(hostile))
    assert block.data == INVOICE


def test_hostile_microdata_is_capped() -> None:
    nested = MICRODATA_INVOICE + "<div itemprop=x>" * 100_000
    block = only(nested)
    assert (block.kind, block.start, block.end) == ("microdata", 0, len(nested))
    assert block.data == {"@type": "Invoice", "x": [""] * 500}  # _MAX_PROPERTIES values
    spans = MICRODATA_INVOICE + "<span itemprop=x>y" * 5_000 + "</span>" * 5_000
    block = only(spans)
    assert (block.kind, block.start, block.end) == ("microdata", 0, len(spans))
    values = block.data["x"]
    assert isinstance(values, list) and len(values) == 500
    assert all(isinstance(v, str) and v.startswith("y") for v in values)


@pytest.mark.parametrize(
    "hostile",
    [
        '<script type="application/ld+json">' + " " * 2_000_000 + "{}</script>",
        "<!--" + "-" * 1_000_000 + ld(INVOICE),
    ],
)
def test_hostile_html_with_no_invoice_to_find_yields_nothing(hostile: str) -> None:
    # An empty object is no invoice; an unclosed comment hides the invoice after it.
    assert find_payment_markup(hostile) == []


def test_large_realistic_html() -> None:
    row = '<tr><td class="c">Item &amp; detail</td><td align="right">$1.00</td></tr>\n'
    html = fixture("microdata_invoice").replace(
        "<p>Your", "<table>" + row * 150_000 + "</table><p>Your"
    )
    assert len(html) > 10_000_000
    block = only(html)
    assert (block.kind, block.data["identifier"]) == ("microdata", "NW-2026-0117")
