"""What the milter changes in a message: header deletions and additions, and maybe the body.

A plan is computed purely from the message and the outcome, then applied by
the protocol layer; tests check plans without a mail server.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from inboxpay.auth import results
from inboxpay.card import HEADER as CARD_HEADER
from inboxpay.card import VERDICT_HEADER
from inboxpay.message import RawMessage


@dataclass(frozen=True)
class Edits:
    delete: tuple[
        tuple[str, int], ...
    ] = ()  # (name, 1-based index per name), safe to apply in order
    insert_top: tuple[tuple[str, str], ...] = ()  # inserted at index 0, in this order
    append: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None  # a replacement body, or None to keep it


def deletions(message: RawMessage, authserv_id: str | None) -> tuple[tuple[str, int], ...]:
    """Inbound copies of our headers; Authentication-Results only when ``authserv_id`` is given.

    Indices count from 1 per header name, as ``smfi_chgheader`` does, and come
    highest first so that deleting one does not renumber the next.
    """
    ours = {CARD_HEADER.lower(), VERDICT_HEADER.lower()}
    seen: Counter[str] = Counter()
    doomed: list[tuple[str, int]] = []
    for raw_name, value in message.headers:
        name = raw_name.decode("ascii", "replace")
        key = name.lower()
        seen[key] += 1
        if key in ours or (
            authserv_id is not None
            and key == results.NAME.lower()
            and results.claims_our_id(value, authserv_id)
        ):
            doomed.append((name, seen[key]))
    return tuple(reversed(doomed))


# Fields of which readers may take either instance when they repeat: we read the first.
_SINGLE_MIME_FIELDS = frozenset(
    {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}
)


def mime_duplicates(message: RawMessage) -> tuple[tuple[str, int], ...]:
    """Every instance but the first of a repeated top-level MIME field, highest first.

    The milter reads the first instance (a DKIM verifier signs the last): deleting the
    others makes every later reader see the structure that was scanned and cleaned.
    """
    seen: Counter[str] = Counter()
    doomed: list[tuple[str, int]] = []
    for raw_name, _value in message.headers:
        name = raw_name.decode("ascii", "replace")
        key = name.lower()
        seen[key] += 1
        if key in _SINGLE_MIME_FIELDS and seen[key] > 1:
            doomed.append((name, seen[key]))
    return tuple(reversed(doomed))


def strip_forged_cards(message: RawMessage) -> Edits:
    """The least the milter always does, even when everything else failed."""
    return Edits(delete=deletions(message, None))
