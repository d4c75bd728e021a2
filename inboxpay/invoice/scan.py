"""Find payment requests in a message's HTML parts, and cut them out byte-exactly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from inboxpay.invoice.markup import MarkupBlock, find_payment_markup, remove_blocks
from inboxpay.invoice.model import InvalidInvoice, Invoice
from inboxpay.invoice.parse import parse_invoice
from inboxpay.message import RawMessage
from inboxpay.mimeparts import TextPart, replace_content, walk_html


@dataclass(frozen=True)
class PaymentRequest:
    """One block of payment markup and what it parsed to (``invoice`` None when invalid)."""

    kind: str
    invoice: Invoice | None
    problem: str = ""


@dataclass(frozen=True)
class MarkupScan:
    """The HTML parts that carry payment markup, with the blocks found in each."""

    found: tuple[tuple[TextPart, tuple[MarkupBlock, ...]], ...]
    complete: bool = True  # False: the MIME walk stopped at a limit (see mimeparts)

    @property
    def blocks(self) -> list[MarkupBlock]:
        return [b for _, blocks in self.found for b in blocks]


# A content type is never transfer-encoded, so mail without these bytes has no HTML part.
_HTML = re.compile(rb"text/html", re.IGNORECASE)


def scan(message: RawMessage) -> MarkupScan:
    if not any(_HTML.search(v) for v in message.values("Content-Type")) and not _HTML.search(
        message.body
    ):
        return MarkupScan(())  # most mail: skip the MIME walk
    found = []
    walk = walk_html(message.headers, message.body)
    for part in walk.parts:
        blocks = find_payment_markup(part.text)
        if blocks:
            found.append((part, tuple(blocks)))
    return MarkupScan(tuple(found), walk.complete)


def requests(markup: MarkupScan, max_amount: Decimal) -> tuple[PaymentRequest, ...]:
    out = []
    for block in markup.blocks:
        try:
            out.append(PaymentRequest(block.kind, parse_invoice(block, max_amount)))
        except InvalidInvoice as e:
            out.append(PaymentRequest(block.kind, None, str(e)))
    return tuple(out)


def strip(body: bytes, markup: MarkupScan) -> bytes:
    """The body with every payment block removed; bytes outside those HTML parts unchanged."""
    # Last part first, so the byte offsets of earlier parts stay valid.
    for part, blocks in sorted(markup.found, key=lambda f: f[0].start, reverse=True):
        body = replace_content(body, part, remove_blocks(part.text, blocks))
    return body
