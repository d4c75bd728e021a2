"""Take payment requests out of a message body, and make sure none is left or created.

Cutting a block out of HTML can join what stood on either side of it into new markup
(a stray "<" before a decoy script, "script ...>" after it), so every removal is scanned
again, up to ``MAX_PASSES`` times. A part that still holds markup after that, that a
browser may read other than we do, or that could not be read at all, is neutralised:
its content becomes a short notice in the part's own charset and transfer encoding.
Every other byte of the body stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inboxpay.invoice.markup import find_payment_markup, remove_blocks
from inboxpay.invoice.mime import TextPart, Unwalked, encode_content
from inboxpay.invoice.scan import MarkupScan, PartFindings, inspect_text

MAX_PASSES = 3

NOTICE = (
    "This part of the message was removed because it may hold a payment request"
    " that could not be checked safely."
)
NOTICE_HTML = f"<!DOCTYPE html>\r\n<html><body><p>{NOTICE}</p></body></html>\r\n"


@dataclass(frozen=True)
class _Splice:
    start: int
    end: int
    data: bytes


def without_markup(body: bytes, markup: MarkupScan) -> bytes:
    """``body`` with every payment request removed and every doubtful part neutralised."""
    splices = [_clean_part(body, f) for f in markup.found]
    splices += [_notice_for(span) for span in markup.unwalked]
    return _apply(body, splices)


def neutralised(body: bytes, parts: Iterable[TextPart], spans: Iterable[Unwalked]) -> bytes:
    """``body`` with each of ``parts`` and ``spans`` replaced by the notice (fail-safe path)."""
    splices = [_Splice(p.start, p.end, encode_content(body, p, NOTICE_HTML)) for p in parts]
    splices += [_notice_for(span) for span in spans]
    return _apply(body, splices)


def clean_html(text: str) -> str | None:
    """``text`` without payment markup, or None when only neutralising it is safe."""
    for _ in range(MAX_PASSES):
        blocks = find_payment_markup(text)
        if not blocks:
            return text
        text = remove_blocks(text, blocks)
        if inspect_text(text).suspect:
            return None  # the cut made something a browser reads differently
    return None if find_payment_markup(text) else text


def _clean_part(body: bytes, found: PartFindings) -> _Splice:
    part = found.part
    text = None if found.suspect else clean_html(part.text)
    if text == part.text:
        return _Splice(part.start, part.end, body[part.start : part.end])
    new = NOTICE_HTML if text is None else text
    return _Splice(part.start, part.end, encode_content(body, part, new))


def _notice_for(span: Unwalked) -> _Splice:
    if span.boundary is None:  # a whole body part: give it a header block of its own
        head = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        return _Splice(span.start, span.end, head + NOTICE.encode("ascii") + b"\r\n")
    # A multipart's content: one plain part between its own delimiters keeps it valid.
    delimiter = b"--" + span.boundary
    content = (
        delimiter
        + b"\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + NOTICE.encode("ascii")
        + b"\r\n"
        + delimiter
        + b"--\r\n"
    )
    return _Splice(span.start, span.end, content)


def _apply(body: bytes, splices: list[_Splice]) -> bytes:
    # Last first, so that earlier offsets stay valid; the walk's spans never overlap.
    for splice in sorted(splices, key=lambda s: s.start, reverse=True):
        body = body[: splice.start] + splice.data + body[splice.end :]
    return body
