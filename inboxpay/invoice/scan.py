"""Find payment requests in a message's HTML parts, and say which parts cannot be trusted.

A part is *suspect* when a browser may read it other than our scanner does (a charset
label browsers do not know, a byte-order mark that overrides the label, or a conformant
HTML5 parser that sees other markup), or when it lay past the MIME walk's limits and
shows a sign of markup. A suspect part never feeds a card and is neutralised on removal.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from decimal import Decimal

from inboxpay import deadline
from inboxpay.invoice import crosscheck
from inboxpay.invoice.markup import KIND_SIGNED, MarkupBlock, find_payment_markup
from inboxpay.invoice.mime import TextPart, Unwalked, walk_html
from inboxpay.invoice.model import InvalidInvoice, Invoice
from inboxpay.invoice.parse import parse_invoice, parse_signed
from inboxpay.invoice.signed import SignedRequest
from inboxpay.message import RawMessage


@dataclass(frozen=True)
class PaymentRequest:
    """One block of payment markup and what it parsed to (``invoice`` None when invalid).

    ``signed`` is set for a SignedActionRequest: its invoice counts only once the verdict
    has checked the signature against the partner's keys.
    """

    kind: str
    invoice: Invoice | None
    problem: str = ""
    signed: SignedRequest | None = None


@dataclass(frozen=True)
class TextFindings:
    blocks: tuple[MarkupBlock, ...]
    suspect: bool


@dataclass(frozen=True)
class PartFindings:
    """An HTML part with payment markup in it, or one that cannot be trusted."""

    part: TextPart
    blocks: tuple[MarkupBlock, ...]
    suspect: bool


@dataclass(frozen=True)
class MarkupScan:
    """The HTML parts that need attention, and the spans the MIME walk could not enter."""

    found: tuple[PartFindings, ...]
    complete: bool = True  # False: the MIME walk reached a limit (see invoice/mime.py)
    unwalked: tuple[Unwalked, ...] = ()
    repeated_fields: bool = False  # Content-Type, -Transfer-Encoding or MIME-Version repeat

    @property
    def blocks(self) -> list[MarkupBlock]:
        return [b for f in self.found for b in f.blocks]

    @property
    def suspect(self) -> bool:
        """Whether some HTML could not be read as a browser reads it."""
        return bool(self.unwalked) or any(f.suspect for f in self.found)


# Where neither of these stands, find_payment_markup finds nothing and a browser builds
# no script element and no microdata item (tag and attribute names are ASCII letters).
_MARKER = re.compile(r"<script|itemscope", re.IGNORECASE)


def inspect_text(html: str) -> TextFindings:
    """Our scanner's blocks in ``html``, and whether a conformant parser disagrees."""
    if not _MARKER.search(html):
        return TextFindings((), False)
    blocks = tuple(find_payment_markup(html))
    return TextFindings(blocks, crosscheck.disagrees(html, blocks))


# What must not be in the bytes for the markers' absence from them to prove their
# absence from every part's decoded text (see may_hold_markup). The checks run on the
# bytes lowered once (bytes.lower() folds ASCII only, as re.IGNORECASE does for bytes):
# substring searches in C, no regular expression over the body. The markers are
# "<script" and "itemscope", as _MARKER above.
# NUL: UTF-16 (every ASCII character has a zero byte); ESC: ISO-2022-JP, whose escape
# sequences vanish from the text ("<scr\x1b(Bipt>"); a byte-order mark, which overrides
# the label (inboxpay.charsets makes that part doubtful). Lowering leaves them alone.
_HIDING = (b"\x00", b"\x1b", b"\xfe\xff", b"\xff\xfe", b"\xef\xbb\xbf")
_ASCII_HIDING = (b"\x00", b"\x1b")  # in ASCII bytes no byte-order mark can stand
# The label as inboxpay.charsets reads it from the parameter's value (on lowered bytes).
_CHARSET_VALUE = re.compile(rb'charset\s*=\s*"?\s*([^\s"();]+)')
_QP_CHARSET_VALUE = re.compile(rb'charset\s*=3d\s*"?\s*([^\s"();=]+)')
# Labels that decode every ASCII byte to itself, never drop a byte, and never make a part
# doubtful (inboxpay.charsets: UTF-8 and the single-byte windows-1252 family).
_PLAIN_CHARSETS = frozenset(
    {b"us-ascii", b"ascii", b"utf-8", b"utf8", b"iso-8859-1", b"latin1", b"windows-1252"}
    | {b"iso-8859-15", b"l1", b"cp1252", b"x-cp1252", b"iso_8859-1", b"iso-ir-100"}
)


def _has_html(message: RawMessage, body_low: bytes | None = None) -> bool:
    """Whether "html" stands anywhere a part's type could say it (``body_low``: the body
    lowered, when the caller has it). A content type is never transfer-encoded: mail
    without "html" has no HTML part."""
    low = message.body.lower() if body_low is None else body_low
    return b"html" in low or any(b"html" in v.lower() for v in message.values("Content-Type"))


def _plain_charsets(low: bytes) -> bool:
    """Whether every "charset" in ``low`` (lowered bytes) names a plain label.

    Only a Content-Type parameter sets a part's charset; ``<meta charset>`` in a
    quoted-printable part reads ``charset=3D"utf-8"``, which is let through when its
    line can be no Content-Type field (it names none and continues none).
    """
    at = low.find(b"charset")
    while at >= 0:
        value = _CHARSET_VALUE.match(low, at)
        if value is None or value.group(1) not in _PLAIN_CHARSETS:
            encoded = _QP_CHARSET_VALUE.match(low, at)
            if encoded is None or encoded.group(1) not in _PLAIN_CHARSETS:
                return False  # charset*=, a comment, utf-7, utf-16, shift_jis, ...: walk
            line_start = low.rfind(b"\n", 0, at) + 1
            line = low[line_start : low.find(b"\n", at) % (len(low) + 1)]
            if line[:1].isspace() or b"content-type" in line:
                return False
        at = low.find(b"charset", at + 1)
    return True


def _hides_markup(data: bytes, low: bytes) -> bool:
    if b"<script" in low or b"itemscope" in low:  # the markers, without a generator
        return True
    return any(h in data for h in (_ASCII_HIDING if data.isascii() else _HIDING))


def may_hold_markup(message: RawMessage) -> bool:
    """Whether some part of ``message`` could hold payment markup or read as suspect.

    False only when that is certain from the bytes alone, without the MIME walk: no
    "html" anywhere; or none of the markers in the body as it stands nor in the body read
    as quoted-printable, no base64, nothing that makes a decoder drop or widen bytes (NUL,
    ESC, a byte-order mark, as they stand or quoted-printable encoded), and only
    ASCII-transparent charset labels. Then every text a part can decode to, under any
    MIME structure a reader may see, is a substring of the body or of its
    quoted-printable reading (decoding is local: a part's interior decodes alike on its
    own and within the whole body), so a browser finds no script element and no
    microdata item in it, and no part can be doubtful (inboxpay.charsets).
    """
    body = message.body
    body_low = body.lower()
    if not _has_html(message, body_low):
        return False
    headers_low = b"\r\n".join(name + b":" + value for name, value in message.headers).lower()
    if b"base64" in headers_low or b"base64" in body_low:
        return True
    qp = binascii.a2b_qp(body)
    qp_low = qp.lower()
    if _hides_markup(body, body_low) or _hides_markup(qp, qp_low):
        return True
    return not (
        _plain_charsets(headers_low) and _plain_charsets(body_low) and _plain_charsets(qp_low)
    )


def scan(message: RawMessage, read: bool = True) -> MarkupScan:
    """Every HTML part with markup, or suspect; ``read=False`` only locates (too large)."""
    if not (may_hold_markup(message) if read else _has_html(message)):
        return MarkupScan(())  # most mail: no MIME walk
    return walked(message, read)


def walked(message: RawMessage, read: bool = True) -> MarkupScan:
    """:func:`scan` with the MIME walk whatever the bytes say."""
    walk = walk_html(message.headers, message.body)
    found = []
    for part in walk.parts:
        deadline.check()
        found.append(_read(part) if read else _located(part))
    found += [_located(p) for p in walk.unread]
    return MarkupScan(
        tuple(f for f in found if f.blocks or f.suspect),
        walk.complete and read,
        tuple(walk.unwalked),
        walk.repeated_fields,
    )


def _read(part: TextPart) -> PartFindings:
    findings = inspect_text(part.text)
    return PartFindings(part, findings.blocks, findings.suspect or part.doubtful)


def _located(part: TextPart) -> PartFindings:
    """A part that is not scanned: suspect when it could hold markup at all."""
    return PartFindings(part, (), part.doubtful or bool(_MARKER.search(part.text)))


def requests(markup: MarkupScan, max_amount: Decimal) -> tuple[PaymentRequest, ...]:
    out = []
    for block in markup.blocks:
        try:
            if block.kind == KIND_SIGNED:
                signed, invoice = parse_signed(block, max_amount)
                out.append(PaymentRequest(block.kind, invoice, signed=signed))
            else:
                out.append(PaymentRequest(block.kind, parse_invoice(block, max_amount)))
        except InvalidInvoice as e:
            out.append(PaymentRequest(block.kind, None, str(e)))
    return tuple(out)
