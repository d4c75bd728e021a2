"""The byte-offset MIME walker: finding text/html parts and splicing one back byte-exactly."""

from __future__ import annotations

import base64
import email
import email.policy
import quopri
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from inboxpay.invoice.markup import find_payment_markup, remove_blocks
from inboxpay.invoice.mime import TextPart, html_parts, replace_content, walk_html
from inboxpay.message import RawMessage

DATA = Path(__file__).parent.parent / "data" / "invoices"
INVOICE_HTML = (DATA / "xero_action.html").read_text("utf-8")


def parse(raw: str | bytes) -> RawMessage:
    """A message written with LF line ends, as the MTA hands it over (CRLF)."""
    return RawMessage.from_bytes(raw.encode("utf-8") if isinstance(raw, str) else raw)


def parts_of(msg: RawMessage, **limits: int) -> list[TextPart]:
    return html_parts(msg.headers, msg.body, **limits)


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def strip_markup(msg: RawMessage) -> bytes:
    """The body with all payment markup removed, last part first."""
    body = msg.body
    for part in reversed(parts_of(msg)):
        blocks = find_payment_markup(part.text)
        if blocks:
            body = replace_content(body, part, remove_blocks(part.text, blocks))
    return body


def markup_left(msg: RawMessage, body: bytes) -> list[object]:
    return [b for p in html_parts(msg.headers, body) for b in find_payment_markup(p.text)]


def email_html(msg: RawMessage, body: bytes) -> list[str]:
    """Independent check with the stdlib parser: the html parts as a mail reader decodes them."""
    parsed = email.message_from_bytes(
        msg.header_block() + b"\r\n" + body, policy=email.policy.default
    )
    assert isinstance(parsed, EmailMessage)
    return [
        part.get_content().replace("\r\n", "\n")
        for part in parsed.walk()
        if part.get_content_type() == "text/html" and not part.is_attachment()
    ]


# --- single part ------------------------------------------------------------------------


def test_single_part_html_is_the_whole_body() -> None:
    msg = parse("Content-Type: text/html; charset=utf-8\n\n<p>Hello</p>\n")
    [part] = parts_of(msg)
    assert (part.start, part.end) == (0, len(msg.body))
    assert part.content_type == "text/html"
    assert part.charset == "utf-8"
    assert part.transfer_encoding == "7bit"
    assert part.text == "<p>Hello</p>\r\n"


@pytest.mark.parametrize(
    "headers",
    ["Content-Type: text/plain\n", "Subject: no content type\n", "Content-Type: image/png\n"],
)
def test_single_part_not_html(headers: str) -> None:
    assert parts_of(parse(headers + "\n<p>Hello</p>\n")) == []


def test_single_part_html_attachment_is_skipped() -> None:
    msg = parse(
        "Content-Type: text/html\nContent-Disposition: attachment; filename=a.html\n\n<p>x</p>\n"
    )
    assert parts_of(msg) == []


_MULTIPART = (
    "{top}MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n"
    "--b\nContent-Type: text/plain\n\nhi\n"
    "--b\n{part}Content-Type: text/html\n\n<p>hi</p>\n--b--\n"
)


@pytest.mark.parametrize(
    ("top", "part", "repeated"),
    [
        ("", "", False),
        ("MIME-Version: 1.0\n", "", True),  # the top level repeats a field
        ("", "Content-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n", True),
        ("", "content-type: text/plain\n", True),  # names compare without case
        ("Content-Disposition: inline\n", "", False),  # not a field readers disagree on
    ],
)
def test_repeated_mime_fields_are_noticed_at_the_top_and_in_a_part(
    top: str, part: str, repeated: bool
) -> None:
    msg = parse(_MULTIPART.format(top=top, part=part))
    assert walk_html(msg.headers, msg.body).repeated_fields is repeated


def test_header_parameters_are_read_properly() -> None:
    msg = parse(
        'Content-Type: TEXT/HTML;\n  charset="ISO-8859-1" (latin)\n'
        "Content-Transfer-Encoding: Quoted-Printable (comment)\n\ncaf=E9\n"
    )
    [part] = parts_of(msg)
    assert part.charset == "iso-8859-1"
    assert part.transfer_encoding == "quoted-printable"
    assert part.text == "café\r\n"


# --- the fixture: mixed > alternative (qp text, qp html) + base64 pdf --------------------


def test_fixture_finds_the_qp_html_part() -> None:
    msg = parse((DATA / "xero_invoice.eml").read_bytes())
    [part] = parts_of(msg)
    assert part.transfer_encoding == "quoted-printable"
    assert part.charset == "utf-8"
    assert "Kia ora Ana Müller" in part.text
    assert msg.body[part.start : part.end].startswith(b"<!DOCTYPE html>")
    assert msg.body[part.end : part.end + 16] == b"\r\n--=_alt_19c2--"
    assert email_html(msg, msg.body) == [part.text.replace("\r\n", "\n")]


def test_fixture_markup_removal_changes_only_the_html_part() -> None:
    msg = parse((DATA / "xero_invoice.eml").read_bytes())
    [part] = parts_of(msg)
    blocks = find_payment_markup(part.text)
    assert [b.kind for b in blocks] == ["action"]
    new_text = remove_blocks(part.text, blocks)
    body = replace_content(msg.body, part, new_text)

    assert body[: part.start] == msg.body[: part.start]  # text part, headers, boundaries
    suffix = len(msg.body) - part.end
    assert body[len(body) - suffix :] == msg.body[part.end :]  # the pdf, byte for byte
    new_content = body[part.start : len(body) - suffix]
    assert b"ld+json" not in new_content
    for line in new_content.split(b"\r\n"):
        assert len(line) <= 76
        assert b"\n" not in line and b"\r" not in line
    assert quopri.decodestring(new_content).decode("utf-8") == new_text
    assert email_html(msg, body) == [new_text.replace("\r\n", "\n")]
    assert markup_left(msg, body) == []
    [again] = html_parts(msg.headers, body)
    assert again.text == new_text


# --- encodings ---------------------------------------------------------------------------


def _alternative(html_headers: str, html_body: bytes, plain: str = "Hello\n") -> RawMessage:
    head = (
        'Content-Type: multipart/alternative; boundary="b1"\n\n'
        f"--b1\nContent-Type: text/plain\n\n{plain}--b1\n{html_headers}\n"
    ).encode()
    return parse(head + html_body + b"\n--b1--\n")


def test_base64_html_part() -> None:
    html = crlf(INVOICE_HTML) + "<p>" + "x" * 300 + "</p>\r\n"
    encoded = base64.encodebytes(html.encode()).replace(b"\n", b"\r\n")
    msg = _alternative(
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n", encoded
    )
    [part] = parts_of(msg)
    assert part.transfer_encoding == "base64"
    assert part.text == html
    [block] = find_payment_markup(part.text)
    new_text = remove_blocks(part.text, [block])
    body = replace_content(msg.body, part, new_text)
    assert body[: part.start] == msg.body[: part.start]
    assert body.endswith(msg.body[part.end :])
    content = body[part.start : len(body) - (len(msg.body) - part.end)]
    lines = content.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines) and all(len(line) == 76 for line in lines[:-2])
    assert base64.b64decode(content).decode() == new_text
    assert markup_left(msg, body) == []
    assert email_html(msg, body) == [new_text.replace("\r\n", "\n")]


def test_base64_keeps_whether_content_ended_with_a_line_break() -> None:
    msg = parse(
        "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(b"<p>hi</p>").decode()
    )
    [part] = parts_of(msg)
    assert replace_content(msg.body, part, "<p>ho</p>") == base64.b64encode(b"<p>ho</p>")


def test_8bit_latin1_html_part() -> None:
    html = crlf(INVOICE_HTML).replace("Hi Ana", "Salut Andrée, café à") + "<p>Prix: 12 €</p>\r\n"
    raw_html = html.replace("€", "EUR").encode("latin-1")
    msg = _alternative(
        "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n", raw_html
    )
    [part] = parts_of(msg)
    assert part.charset == "iso-8859-1"
    assert "Salut Andrée, café à" in part.text
    [block] = find_payment_markup(part.text)
    body = replace_content(msg.body, part, remove_blocks(part.text, [block]))
    # 8bit: the part's own bytes outside the markup are unchanged too.
    removed = part.text[block.start : block.end].encode("latin-1")
    assert body == msg.body.replace(removed, b"")
    assert markup_left(msg, body) == []


def test_characters_the_charset_lacks_become_references() -> None:
    msg = parse("Content-Type: text/html; charset=iso-8859-1\n\n<p>x</p>")
    [part] = parts_of(msg)
    # iso-8859-1 is windows-1252 to a browser (so "€" is 0x80), which has no omega.
    assert replace_content(msg.body, part, "<p>12 Ω</p>") == b"<p>12 &#937;</p>"


def test_qp_without_line_breaks_still_uses_crlf_soft_breaks() -> None:
    msg = parse("Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<p>x</p>")
    [part] = parts_of(msg)
    body = replace_content(msg.body, part, "<p>" + "y" * 200 + "</p>")
    assert b"=\r\n" in body and b"=\n" not in body.replace(b"=\r\n", b"")
    assert quopri.decodestring(body) == b"<p>" + b"y" * 200 + b"</p>"


def test_7bit_replacement_normalises_line_ends_to_crlf() -> None:
    msg = parse("Content-Type: text/html\n\n<p>x</p>\n")
    [part] = parts_of(msg)
    assert replace_content(msg.body, part, "<p>a</p>\n<p>b</p>\r<p>c</p>\r\n") == (
        b"<p>a</p>\r\n<p>b</p>\r\n<p>c</p>\r\n"
    )


def test_replace_rejects_a_span_outside_the_body() -> None:
    part = TextPart(5, 50, "text/html", "utf-8", "7bit", "")
    with pytest.raises(ValueError, match="outside"):
        replace_content(b"short", part, "")


@pytest.mark.parametrize(
    ("charset", "raw", "used", "text"),
    [
        ("x-unknown-charset", "Ünïcode".encode(), "utf-8", "Ünïcode"),
        ("x-unknown-charset", b"caf\xe9", "windows-1252", "café"),
        (None, b"caf\xe9", "windows-1252", "café"),
        (None, "café".encode(), "utf-8", "café"),
        ("us-ascii", b"caf\xe9", "us-ascii", "café"),  # windows-1252 to a browser
        ("utf-8", b"caf\xe9!", "utf-8", "caf\ufffd!"),  # declared: decoded with replacement
        ("windows-1252", b"\x93quoted\x94", "windows-1252", "\u201cquoted\u201d"),
        ("ks_c_5601-1987", "한국".encode("cp949"), "ks_c_5601-1987", "한국"),  # Outlook's label
        ("unicode-escape", b"\\x3cp>", "utf-8", "\\x3cp>"),  # not a mail charset
        ("base64", b"PHA+", "utf-8", "PHA+"),  # a codec, but not a text encoding
    ],
)
def test_charsets(charset: str | None, raw: bytes, used: str, text: str) -> None:
    param = f"; charset={charset}" if charset else ""
    msg = parse(
        f"Content-Type: text/html{param}\nContent-Transfer-Encoding: 8bit\n\n".encode() + raw
    )
    [part] = parts_of(msg)
    assert (part.charset, part.text) == (used, text)
    if "\ufffd" not in text:  # what decoded losslessly is written back byte for byte
        assert replace_content(msg.body, part, part.text) == msg.body


@pytest.mark.parametrize(
    ("cte", "raw", "text"),
    [
        ("base64", b"PHA+aGk8L3A+", "<p>hi</p>"),
        ("base64", b"PHA+a\r\nGk8L3A+\r\n", "<p>hi</p>"),
        ("base64", b"PHA+aGk8L3A", "<p>hi</p"),  # missing padding
        ("base64", b"PHA+aGk8L3A+!!*\x00", "<p>hi</p>"),  # junk
        ("base64", b"PHA+a", "<p>"),  # a dangling character
        ("base64", b"", ""),
        ("quoted-printable", b"a=3Db=\r\nc=ZZ=", "a=bc=ZZ"),
        ("x-uuencode", b"begin 644", "begin 644"),
    ],
)
def test_malformed_transfer_encodings_are_read_best_effort(cte: str, raw: bytes, text: str) -> None:
    msg = parse(f"Content-Type: text/html\nContent-Transfer-Encoding: {cte}\n\n".encode() + raw)
    [part] = parts_of(msg)
    assert part.text == text


# --- structure ---------------------------------------------------------------------------

NESTED = """\
Content-Type: multipart/mixed; boundary="outer"

preamble with <p>html-looking</p> text
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain

plain
--alt
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=utf-8

<p>inside related</p>
--rel
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <logo>

iVBORw0KGgo=
--rel--
--alt--
--outer
Content-Type: text/html
Content-Disposition: inline

<p>inline second</p>
--outer
Content-Type: text/html; name=report.html
Content-Disposition: attachment; filename=report.html

<p>attached</p>
--outer
Content-Type: message/rfc822
Content-Disposition: inline

From: someone@example.com
Content-Type: text/html

<p>forwarded</p>
--outer--
epilogue <p>not a part</p>
"""


def test_nested_multiparts() -> None:
    msg = parse(NESTED)
    parts = parts_of(msg)
    assert [p.text for p in parts] == ["<p>inside related</p>", "<p>inline second</p>"]
    for part in parts:
        assert msg.body[part.start : part.end].decode() == part.text
    assert parts[0].start < parts[1].start


def test_message_rfc822_is_not_entered() -> None:
    forwarded = parse(
        'Content-Type: multipart/mixed; boundary="m"\n\n--m\nContent-Type: text/plain\n\n'
        "see attached\n--m\nContent-Type: message/rfc822\n\nContent-Type: text/html\n\n"
        f"{INVOICE_HTML}\n--m--\n"
    )
    assert parts_of(forwarded) == []
    top = parse(f"Content-Type: message/rfc822\n\nContent-Type: text/html\n\n{INVOICE_HTML}")
    assert parts_of(top) == []


def test_digest_parts_default_to_message_rfc822() -> None:
    msg = parse(
        'Content-Type: multipart/digest; boundary="d"\n\n--d\n\nContent-Type: text/html\n\n'
        "<p>digest</p>\n--d--\n"
    )
    assert parts_of(msg) == []


def test_boundary_line_rules() -> None:
    msg = parse(
        'Content-Type: multipart/alternative; boundary="b"\n\n'
        "--b \t\nContent-Type: text/html\n\n"  # transport padding after the delimiter
        "<p>one</p>\n"
        "--bb is only a prefix\n"  # not a delimiter
        " --b not at line start\n"
        "--b\nContent-Type: text/html\n\n<p>two</p>\n"
        "--b-- \n"
        "--b\nContent-Type: text/html\n\n<p>in the epilogue</p>\n"
    )
    texts = [p.text for p in parts_of(msg)]
    assert texts == [
        "<p>one</p>\r\n--bb is only a prefix\r\n --b not at line start",
        "<p>two</p>",
    ]


def test_unterminated_boundary_runs_to_the_end() -> None:
    msg = parse(
        'Content-Type: multipart/mixed; boundary="u"\n\n--u\nContent-Type: text/plain\n\nhi\n'
        "--u\nContent-Type: text/html\n\n<p>last</p>\n"
    )
    [part] = parts_of(msg)
    assert part.text == "<p>last</p>\r\n"
    assert part.end == len(msg.body)


@pytest.mark.parametrize(
    "content_type",
    ["multipart/mixed", 'multipart/mixed; boundary=""', 'multipart/mixed; boundary="nowhere"'],
)
def test_missing_boundary_gives_no_parts(content_type: str) -> None:
    msg = parse(
        f"Content-Type: {content_type}\n\n--x\nContent-Type: text/html\n\n<p>x</p>\n--x--\n"
    )
    assert parts_of(msg) == []


def test_parts_without_headers_or_content() -> None:
    msg = parse(
        'Content-Type: multipart/mixed; boundary="z"\n\n'
        "--z\n\n<p>no headers: text/plain</p>\n"
        "--z\nContent-Type: text/html\n"  # header block but no blank line: no content
        "--z\n--z\nContent-Type: text/html\n\n<p>after an empty part</p>\n--z--\n"
    )
    assert [p.text for p in parts_of(msg)] == ["", "<p>after an empty part</p>"]


def test_bare_lf_line_ends_are_tolerated() -> None:
    headers = [(b"Content-Type", b' multipart/alternative; boundary="lf"')]
    body = b"--lf\nContent-Type: text/html\n\n<p>lf</p>\n--lf--\n"
    [part] = html_parts(headers, body)
    assert part.text == "<p>lf</p>"


def test_rfc2231_boundary() -> None:
    msg = parse(
        'Content-Type: multipart/alternative; boundary*0="ab"; boundary*1="cd"\n\n'
        "--abcd\nContent-Type: text/html\n\n<p>2231</p>\n--abcd--\n"
    )
    assert [p.text for p in parts_of(msg)] == ["<p>2231</p>"]


def test_max_depth_stops_descending() -> None:
    def nest(depth: int) -> str:
        inner = "Content-Type: text/html\n\n<p>deep</p>\n"
        for level in range(depth):
            inner = (
                f'Content-Type: multipart/mixed; boundary="n{level}"\n\n'
                f"--n{level}\n{inner}--n{level}--\n"
            )
        return inner

    assert len(parts_of(parse(nest(10)), max_depth=10)) == 1
    assert parts_of(parse(nest(11)), max_depth=10) == []
    assert len(parts_of(parse(nest(11)), max_depth=11)) == 1
    # The walk says when a limit left parts unread.
    deep = parse(nest(11))
    assert walk_html(deep.headers, deep.body, max_depth=10).complete is False
    assert walk_html(deep.headers, deep.body, max_depth=11).complete is True


def test_a_walk_within_the_part_limit_is_complete() -> None:
    def parts(n: int) -> RawMessage:
        body = "".join(f"--p\nContent-Type: text/html\n\n<p>{i}</p>\n" for i in range(n))
        return parse(f'Content-Type: multipart/mixed; boundary="p"\n\n{body}--p--\n')

    exactly, one_more = parts(5), parts(6)
    assert walk_html(exactly.headers, exactly.body, max_parts=5).complete is True
    short = walk_html(one_more.headers, one_more.body, max_parts=5)
    assert (len(short.parts), short.complete) == (5, False)


def test_depth_bomb() -> None:
    depth = 1000
    head = "".join(
        f'--d{i}\nContent-Type: multipart/mixed; boundary="d{i + 1}"\n\n' for i in range(depth)
    )
    tail = "".join(f"--d{i}--\n" for i in reversed(range(depth)))
    msg = parse(
        'Content-Type: multipart/mixed; boundary="d0"\n\n'
        + head
        + f"--d{depth}\nContent-Type: text/html\n\n{INVOICE_HTML}\n"
        + tail
    )
    started = time.perf_counter()
    assert parts_of(msg) == []
    # Iterative: no RecursionError even when told to go all the way down.
    assert parts_of(msg, max_depth=5000, max_parts=5000) != []
    assert time.perf_counter() - started < 2


def test_max_parts() -> None:
    body = "".join(f"--p\nContent-Type: text/html\n\n<p>{i}</p>\n" for i in range(1000))
    msg = parse(f'Content-Type: multipart/mixed; boundary="p"\n\n{body}--p--\n')
    assert len(parts_of(msg)) == 100
    assert [p.text for p in parts_of(msg, max_parts=3)] == ["<p>0</p>", "<p>1</p>", "<p>2</p>"]


# --- size --------------------------------------------------------------------------------

MB = 1024 * 1024


def _timed(msg: RawMessage) -> tuple[list[TextPart], float]:
    started = time.perf_counter()
    parts = parts_of(msg)
    return parts, time.perf_counter() - started


def test_20mb_attachment_is_linear() -> None:
    def build(size: int) -> RawMessage:
        attachment = base64.encodebytes(b"\x00\xff" * (size // 2)).decode()
        return parse(
            'Content-Type: multipart/mixed; boundary="big"\n\n'
            f"--big\nContent-Type: text/html\n\n{INVOICE_HTML}\n"
            "--big\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            f"{attachment}--big--\n"
        )

    small, t_small = _timed(build(2 * MB))
    big_msg = build(20 * MB)
    big, t_big = _timed(big_msg)
    assert len(big_msg.body) > 20 * MB
    assert len(small) == len(big) == 1
    assert t_big < 5
    assert t_big < 20 * t_small + 0.5  # ~10x the size may not cost more than ~20x the time


def test_20mb_html_part_and_near_miss_boundaries() -> None:
    filler = "<p>" + "--b-not-a-delimiter\n--bX\n" * (20 * MB // 26) + "</p>"
    msg = parse(
        'Content-Type: multipart/mixed; boundary="b"\n\n'
        f"--b\nContent-Type: text/html\n\n{filler}\n--b--\n"
    )
    [part], elapsed = _timed(msg)
    assert len(part.text) > 20 * MB
    assert elapsed < 5
    started = time.perf_counter()
    replace_content(msg.body, part, part.text)
    assert time.perf_counter() - started < 5


# --- round trip over the fixtures ---------------------------------------------------------


def _fixture_messages() -> list[RawMessage]:
    messages = [parse((DATA / "xero_invoice.eml").read_bytes())]
    for name in ("xero_action", "freshbooks_invoice", "microdata_invoice"):
        html = crlf((DATA / f"{name}.html").read_text("utf-8"))
        qp = quopri.encodestring(html.encode()).decode()
        b64 = base64.encodebytes(html.encode()).decode()
        messages.append(parse(f"Content-Type: text/html; charset=utf-8\n\n{html}"))
        messages.append(
            parse(
                'Content-Type: multipart/alternative; boundary="r"\n\n--r\n'
                "Content-Type: text/html; charset=utf-8\n"
                "Content-Transfer-Encoding: quoted-printable\n\n"
                f"{qp}\n--r\nContent-Type: text/html; charset=utf-8\n"
                f"Content-Transfer-Encoding: base64\n\n{b64}--r--\n"
            )
        )
    return messages


@pytest.mark.parametrize("msg", _fixture_messages())
def test_round_trip_leaves_no_markup(msg: RawMessage) -> None:
    assert markup_left(msg, msg.body) != []
    body = strip_markup(msg)
    assert markup_left(msg, body) == []
    assert len(html_parts(msg.headers, body)) == len(parts_of(msg))


# --- the header-block reader against email's own parser ----------------------------------

_FIELD_LINES = [
    "Content-Type: text/html; charset=utf-8",
    'Content-Type: multipart/alternative;\r\n boundary="b1"',
    "Content-Type: multipart/mixed; boundary*0=ab; boundary*1=cd",
    'content-type: TEXT/HTML (a comment); charset="iso-8859-1"',
    "Content-Disposition: attachment; filename=a.html",
    "Content-Disposition: inline",
    "Content-Transfer-Encoding: base64",
    "Content-Transfer-Encoding:quoted-printable",
    "Content-Type:",
    "X-Other: value",
    "Subject: caf\xe9",
    " folded continuation",
    "\tcontinuation with tab",
    "From someone@example.test Mon Jan 1 00:00:00 2024",
    ": no name",
    "not a header line",
    "",
    "Content-Type: text/plain",
]


def _fields_both(block: bytes) -> tuple[object, object]:
    from email.parser import BytesHeaderParser

    from inboxpay.invoice.mime import _MIME_FIELDS, _header_fields

    def view(m: email.message.Message) -> object:
        return (
            # The fields _header_fields keeps (a "Content-Content-Type" is no MIME field).
            [(k.lower(), v) for k, v in m.raw_items() if k.lower() in _MIME_FIELDS],
            m.get_content_type(),
            m.get_boundary(),
            m.get_content_charset(),
            m.get_content_disposition(),
            m.get("content-transfer-encoding"),
        )

    return view(_header_fields(block)), view(BytesHeaderParser().parsebytes(block))


def test_header_fields_reads_the_mime_fields_as_email_does() -> None:
    import itertools

    for a, b, c in itertools.permutations(_FIELD_LINES, 3):
        for eol in ("\r\n", "\n", "\r"):
            block = eol.join((a, b, c)).encode("utf-8", "surrogateescape")
            ours, theirs = _fields_both(block)
            assert ours == theirs, block


def test_header_fields_agrees_with_email_on_arbitrary_bytes() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from([line.encode("latin-1") for line in _FIELD_LINES])
    noise = st.binary(max_size=40)
    eols = st.sampled_from([b"\r\n", b"\n", b"\r", b""])

    @settings(max_examples=600, deadline=None)
    @given(st.lists(st.tuples(st.one_of(pieces, noise), eols), max_size=8))
    def check(lines: list[tuple[bytes, bytes]]) -> None:
        ours, theirs = _fields_both(b"".join(line + eol for line, eol in lines))
        assert ours == theirs

    check()
