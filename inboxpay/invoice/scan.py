"""Find payment requests in a message's HTML parts, and say which parts cannot be trusted.

A part is *suspect* when a browser may read it other than our scanner does (a charset
label browsers do not know, a byte-order mark that overrides the label, or a conformant
HTML5 parser that sees other markup), or when it lay past the MIME walk's limits and
shows a sign of markup. A suspect part never feeds a card and is neutralised on removal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from inboxpay import deadline
from inboxpay.invoice import crosscheck
from inboxpay.invoice.markup import KIND_SIGNED, MarkupBlock, find_payment_markup
from inboxpay.invoice.model import InvalidInvoice, Invoice
from inboxpay.invoice.parse import parse_invoice, parse_signed
from inboxpay.invoice.signed import SignedRequest
from inboxpay.message import RawMessage
from inboxpay.mimeparts import TextPart, Unwalked, walk_html


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
    complete: bool = True  # False: the MIME walk reached a limit (see mimeparts)
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
# A content type is never transfer-encoded: mail without this has no HTML part.
_HTML = re.compile(rb"html", re.IGNORECASE)


def inspect_text(html: str) -> TextFindings:
    """Our scanner's blocks in ``html``, and whether a conformant parser disagrees."""
    if not _MARKER.search(html):
        return TextFindings((), False)
    blocks = tuple(find_payment_markup(html))
    return TextFindings(blocks, crosscheck.disagrees(html, blocks))


def scan(message: RawMessage, read: bool = True) -> MarkupScan:
    """Every HTML part with markup, or suspect; ``read=False`` only locates (too large)."""
    if not any(_HTML.search(v) for v in message.values("Content-Type")) and not _HTML.search(
        message.body
    ):
        return MarkupScan(())  # most plain-text mail: skip the MIME walk
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
