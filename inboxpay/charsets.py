"""Decode a text part as a browser does, and encode new text back to the same bytes.

What we scan must be what the recipient's mail client shows, or markup hidden from the
scanner reaches the reader. Browsers decode by the WHATWG Encoding Standard: a byte-order
mark wins over any label; a label is looked up in the standard's table (``webencodings``),
and one it does not list (utf-7, utf-32, EBCDIC, ...) is ignored, as Python, which knows
them, would not. A part we cannot be sure to read as every client does is *doubtful*.

Decoding is exact enough to write the part back: text a caller leaves alone encodes to
the bytes it came from, except in the multi-byte CJK encodings, where a few characters
have two byte sequences (Shift_JIS's NEC and IBM codes for the IBM extensions, for one)
and are written back as the one Python chooses: the same text for every reader. Only a
part whose text changed is written back at all. Python's single-byte codecs leave some
bytes undefined where WHATWG maps them to C1 controls (cp1252's 0x81 0x8D 0x8F 0x90
0x9D); those are mapped as WHATWG does, both ways.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

import webencodings

_CHARSET_LABEL = re.compile(r'\s*"?\s*([^\s"();]+)')
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16be"), (b"\xff\xfe", "utf-16le"))
_SIG = "-sig"  # a charset name's suffix: the content starts with a byte-order mark
FALLBACK = "windows-1252"

# WHATWG names whose Python codec is not found under the same name, or is another codec.
_PYTHON_CODECS = {
    "utf-16le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
    "euc-kr": "cp949",
    "gbk": "gb18030",  # the standard's GBK decoder is its gb18030 decoder
    "iso-2022-jp": "iso2022_jp",
    "iso-8859-8-i": "iso8859-8",
    "x-mac-cyrillic": "mac-cyrillic",
    "macintosh": "mac-roman",
    "windows-874": "cp874",
    "ibm866": "cp866",
}
_SINGLE_BYTE = frozenset(
    {
        *("ibm866", "koi8-r", "koi8-u", "macintosh", "x-mac-cyrillic", "windows-874"),
        *(f"iso-8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, "8-i", 10, 13, 14, 15, 16)),
        *(f"windows-{n}" for n in range(1250, 1259)),
    }
)
# Multi-byte decoders whose error recovery in Python differs from the standard's (how many
# bytes, ASCII ones included, an invalid sequence swallows): doubtful when the data has one.
_LENIENT_RECOVERY = frozenset({"shift_jis", "euc-jp", "euc-kr", "big5", "gbk", "gb18030"})
# Always doubtful: UTF-16 without a byte-order mark (clients differ on the byte order),
# ISO-2022-JP (Python does not implement the standard's escape-sequence states), and the
# "replacement" encoding (browsers show one U+FFFD, other clients decode ISO-2022-KR, HZ).
_UNCERTAIN = frozenset({"utf-16le", "utf-16be", "iso-2022-jp", "replacement"})
# In a part with no usable label a browser may still read ISO-2022-JP (a <meta> charset or
# detection), where escape sequences vanish from the text: "<scr\x1b(Bipt>" is "<script>".
_ISO2022_ESCAPE = re.compile(rb"\x1b[$(]")


@dataclass(frozen=True)
class Decoded:
    charset: str  # a name :func:`encode` takes: a WHATWG label, maybe with the "-sig" suffix
    text: str
    doubtful: bool  # a recipient's client may show other text than ``text``


def decode(data: bytes, declared: str | None) -> Decoded:
    """``data`` as a browser decodes a part whose Content-Type charset is ``declared``."""
    label = _label(declared)
    encoding = _whatwg(label) if label is not None else None
    for bom, name in _BOMS:
        if data.startswith(bom):
            # A label that names the same encoding is not overridden; no label, UTF-8 is.
            expected = encoding or ("utf-8" if label is None else None)
            text = _decode(data[len(bom) :], name)
            return Decoded(name + _SIG, text, expected != name)
    if label is not None and encoding is not None:
        text, clean = _decode_checked(data, encoding)
        return Decoded(label, text, encoding in _UNCERTAIN or not clean)
    # No label, or one browsers do not know: UTF-8 when the bytes are valid UTF-8, which
    # reads every ASCII byte as windows-1252 would and so the same markup; else windows-1252.
    doubtful = label is not None or bool(_ISO2022_ESCAPE.search(data))
    try:
        return Decoded("utf-8", data.decode("utf-8"), doubtful)
    except UnicodeDecodeError:
        return Decoded(FALLBACK, _decode(data, FALLBACK), doubtful)


def encode(text: str, charset: str, errors: str = "xmlcharrefreplace") -> bytes:
    """``text`` in ``charset`` (a :class:`Decoded` charset, or any WHATWG or Python label)."""
    bom = b""
    if charset.endswith(_SIG):
        charset = charset.removesuffix(_SIG)
        bom = next((b for b, name in _BOMS if name == charset), b"")
    name = _whatwg(charset)
    if name is None:
        return bom + text.encode(charset, errors)  # a Python codec name from elsewhere
    if name == "replacement":
        name = "utf-8"  # the standard's encoder for it
    if name in _SINGLE_BYTE:
        return bom + codecs.charmap_encode(text, errors, _single_byte(name)[1])[0]
    if name == "x-user-defined":
        return bom + _user_defined().encode(text, errors)[0]
    return bom + text.encode(_python_codec(name), errors)


def knows(label: str) -> bool:
    """Whether browsers know the charset label (the WHATWG Encoding Standard lists it)."""
    return _whatwg(label) is not None


def _label(declared: str | None) -> str | None:
    found = _CHARSET_LABEL.match(declared or "")  # without quotes or a trailing comment
    return found.group(1).lower() if found is not None else None


def _whatwg(label: str) -> str | None:
    encoding = webencodings.lookup(label)
    return encoding.name if encoding is not None else None


def _decode(data: bytes, name: str) -> str:
    return _decode_checked(data, name)[0]


def _decode_checked(data: bytes, name: str) -> tuple[str, bool]:
    """The text, and whether it decoded without error (or with WHATWG's own recovery)."""
    if name == "replacement":
        return ("\ufffd" if data else ""), True
    if name == "x-user-defined":
        return _user_defined().decode(data, "replace")[0], True
    if name in _SINGLE_BYTE:
        return codecs.charmap_decode(data, "replace", _single_byte(name)[0])[0], True
    codec = _python_codec(name)
    if name not in _LENIENT_RECOVERY:
        return data.decode(codec, errors="replace"), True  # UTF-8, UTF-16: as WHATWG
    try:
        return data.decode(codec), True
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), False


def _python_codec(name: str) -> str:
    return _PYTHON_CODECS.get(name, name)


def _user_defined() -> codecs.CodecInfo:
    encoding = webencodings.lookup("x-user-defined")
    assert encoding is not None
    info: codecs.CodecInfo = encoding.codec_info
    return info


@functools.cache
def _single_byte(name: str) -> tuple[str, dict[int, int]]:
    """The WHATWG decoding table of a single-byte encoding, and its encoding map.

    Python's codec, with each byte it leaves undefined in 0x80-0x9F mapped to the C1 control
    of the same number, as the standard's indexes do; other undefined bytes are U+FFFD.
    """
    codec = _python_codec(name)
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode(codec))
        except UnicodeDecodeError:
            chars.append(chr(byte) if 0x80 <= byte <= 0x9F else "\ufffd")
    table = "".join(chars)
    encoding = {ord(char): byte for byte, char in enumerate(table) if char != "\ufffd"}
    return table, encoding
