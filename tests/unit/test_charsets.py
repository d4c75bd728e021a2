"""Decoding HTML parts as a browser does (WHATWG Encoding Standard), and writing them back.

A hostile sender picks the charset label and the first bytes: a byte-order mark the label
contradicts, or a label Python knows and browsers do not, makes us read other text than the
recipient's client shows. The part must be read as the browser reads it, flagged
``doubtful`` when a client may read it otherwise, and written back byte for byte.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inboxpay import charsets
from inboxpay.invoice.markup import find_payment_markup, remove_blocks
from inboxpay.invoice.mime import TextPart, html_parts, replace_content
from inboxpay.message import RawMessage

INVOICE = {"@context": "https://schema.org", "@type": "Invoice", "identifier": "EVIL-1"}
HTML = f'<p>Pay now</p><script type="application/ld+json">{json.dumps(INVOICE)}</script><p>x</p>'


def part_of(content_type: str, data: bytes, cte: str = "8bit") -> tuple[RawMessage, TextPart]:
    head = f"Content-Type: {content_type}\nContent-Transfer-Encoding: {cte}\n\n".encode()
    body = base64.encodebytes(data) if cte == "base64" else data
    msg = RawMessage.from_bytes(head + body)
    [part] = html_parts(msg.headers, msg.body)
    return msg, part


def stripped(msg: RawMessage, part: TextPart) -> bytes:
    return replace_content(msg.body, part, remove_blocks(part.text, find_payment_markup(part.text)))


# --- byte-order marks win ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("bom", "codec", "charset"),
    [
        (b"\xff\xfe", "utf-16-le", "utf-16le-sig"),
        (b"\xfe\xff", "utf-16-be", "utf-16be-sig"),
    ],
)
@pytest.mark.parametrize("declared", ["; charset=utf-8", "; charset=us-ascii", ""])
def test_utf16_bom_overrides_the_label(bom: bytes, codec: str, charset: str, declared: str) -> None:
    # Read as UTF-8 this is "<\0s\0c\0..." and no scanner sees a script; a browser does.
    msg, part = part_of(f"text/html{declared}", bom + HTML.encode(codec), "base64")
    assert (part.charset, part.text, part.doubtful) == (charset, HTML, True)
    [block] = find_payment_markup(part.text)
    assert block.data["identifier"] == "EVIL-1"
    after = html_parts(msg.headers, stripped(msg, part))[0]
    assert after.text == HTML.replace(HTML[block.start : block.end], "")
    assert base64.b64decode(stripped(msg, part)).startswith(bom)


def test_utf16_bom_matching_the_label_is_not_doubtful() -> None:
    _, part = part_of("text/html; charset=utf-16", b"\xff\xfe" + HTML.encode("utf-16-le"), "base64")
    assert (part.text, part.doubtful) == (HTML, False)


@pytest.mark.parametrize(("declared", "doubtful"), [("utf-8", False), ("windows-1252", True)])
def test_utf8_bom(declared: str, doubtful: bool) -> None:
    msg, part = part_of(f"text/html; charset={declared}", b"\xef\xbb\xbf" + "é".encode() + b"<p>")
    assert (part.charset, part.text, part.doubtful) == ("utf-8-sig", "é<p>", doubtful)
    assert replace_content(msg.body, part, part.text) == msg.body  # the BOM is written back


def test_utf8_bom_without_a_label_is_not_doubtful() -> None:
    _, part = part_of("text/html", b"\xef\xbb\xbf<p>")
    assert (part.text, part.doubtful) == ("<p>", False)


# --- labels browsers do not know --------------------------------------------------------


@pytest.mark.parametrize(
    "label", ["utf-7", "UTF-7", "cp037", "ibm037", "utf-32", "x-unknown", "latin-1"]
)
def test_unknown_labels_fall_back_like_a_browser(label: str) -> None:
    # In UTF-7 "+json" starts a base64 run, and in EBCDIC "<" is "L": Python would read
    # no ld+json script, where a browser ignores the label and reads plain ASCII.
    msg, part = part_of(f'text/html; charset="{label}"', HTML.encode("ascii"))
    assert (part.text, part.doubtful) == (HTML, True)
    [block] = find_payment_markup(part.text)
    assert block.data["identifier"] == "EVIL-1"
    assert stripped(msg, part) == HTML.replace(HTML[block.start : block.end], "").encode()


def test_unknown_label_with_8bit_bytes_is_windows_1252() -> None:
    _, part = part_of("text/html; charset=utf-7", b"\x93q\x94 \x81")
    assert (part.charset, part.text, part.doubtful) == ("windows-1252", "\u201cq\u201d \x81", True)


def test_utf16_label_without_bom_is_doubtful() -> None:
    # The standard reads "utf-16" as UTF-16LE; RFC 2781 readers take big-endian.
    _, part = part_of("text/html; charset=utf-16", HTML.encode("utf-16-le"), "base64")
    assert (part.text, part.doubtful) == (HTML, True)


@pytest.mark.parametrize(
    ("label", "data", "text", "doubtful"),
    [
        ("us-ascii", b"\x93q\x94", "\u201cq\u201d", False),  # windows-1252 to a browser
        ("iso-8859-1", b"\x80", "\u20ac", False),
        ("utf-8", "é".encode(), "é", False),
        ("ks_c_5601-1987", "한국".encode("cp949"), "한국", False),
        ("iso-2022-jp", b"<scr\x1b(Bipt>", "<script>", True),  # Python's decoder differs
        ("iso-2022-kr", b"<script>", "\ufffd", True),  # browsers show nothing
        ("shift_jis", b"<p>\x81\x7f", "<p>\ufffd\x7f", True),  # error recovery differs
        (None, b"<scr\x1b(Bipt>", "<scr\x1b(Bipt>", True),  # <meta> may say ISO-2022-JP
        (None, b"<p>\x93", "<p>\u201c", False),
    ],
)
def test_labels(label: str | None, data: bytes, text: str, doubtful: bool) -> None:
    decoded = charsets.decode(data, label)
    assert (decoded.text, decoded.doubtful) == (text, doubtful)


# --- writing back byte for byte ---------------------------------------------------------


def test_windows_1252_bytes_python_leaves_undefined_round_trip() -> None:
    # WHATWG maps 0x81 0x8D 0x8F 0x90 0x9D to C1 controls; Python's cp1252 has no mapping.
    odd = b"\x81\x8d\x8f\x90\x9d\x80\x93"
    raw = b"<p>" + odd + b"</p>" + HTML.encode() + b"<p>" + odd + b"</p>"
    msg, part = part_of("text/html; charset=windows-1252", raw)
    assert "\ufffd" not in part.text and not part.doubtful
    assert len(find_payment_markup(part.text)) == 1
    script = HTML[HTML.index("<script") : HTML.index("</script>") + 9].encode()
    assert stripped(msg, part) == raw.replace(script, b"")


# Multi-byte encodings in which a few characters have two byte sequences: text written
# back reads the same, its bytes may be the other sequence (see charsets' docstring).
TWO_WAY_CHARSETS = frozenset({"shift_jis", "euc-kr", "gbk", "big5", "euc-jp"})

LABELS = [
    None, "utf-8", "windows-1252", "iso-8859-1", "us-ascii", "iso-8859-2", "koi8-r",
    "windows-1251", "windows-1253", "windows-874", "shift_jis", "euc-kr", "gbk", "big5",
    "euc-jp", "utf-16", "utf-16be", "x-user-defined", "utf-7", "cp037",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=64),
    st.sampled_from(LABELS),
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]),
)
def test_what_decodes_cleanly_encodes_back_to_the_same_text_and_bytes(
    data: bytes, label: str | None, bom: bytes
) -> None:
    decoded = charsets.decode(bom + data, label)
    if "\ufffd" not in decoded.text:
        encoded = charsets.encode(decoded.text, decoded.charset)
        # The reader sees the same text, in every encoding.
        assert charsets.decode(encoded, decoded.charset).text == decoded.text
        if decoded.charset not in TWO_WAY_CHARSETS:
            assert encoded == bom + data


def test_a_character_with_two_byte_sequences_encodes_back_as_one_of_them() -> None:
    # Shift_JIS has NEC's and IBM's codes for the IBM extensions (WHATWG decodes both):
    # a rewritten part keeps the text, in the one Python writes (found by the test above).
    decoded = charsets.decode(b"\xfa\x40", "shift_jis")
    assert decoded.text == "\u2170" and not decoded.doubtful
    assert charsets.encode(decoded.text, "shift_jis") == b"\xee\xef"
    assert charsets.decode(b"\xee\xef", "shift_jis").text == "\u2170"


def test_encode_takes_python_codec_names_from_elsewhere() -> None:
    assert charsets.encode("é€", "latin-1") == b"\xe9&#8364;"
