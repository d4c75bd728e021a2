"""What the milter changes in a message: header deletions and additions, and maybe the body.

A plan is computed purely from the message and the outcome, then applied by
the protocol layer; tests check plans without a mail server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from inboxpay.auth import results
from inboxpay.card.header import HEADER as CARD_HEADER
from inboxpay.card.header import VERDICT_HEADER
from inboxpay.message import RawMessage


@dataclass(frozen=True)
class Edits:
    delete: tuple[
        tuple[str, int], ...
    ] = ()  # (name, 1-based index per name), safe to apply in order
    insert_top: tuple[tuple[str, str], ...] = ()  # inserted at index 0, in this order
    append: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None  # a replacement body, or None to keep it


@dataclass(frozen=True)
class _Field:
    name: str  # as received, for smfi_chgheader
    key: str  # lowercase
    index: int  # 1-based among fields of that name, as smfi_chgheader counts
    value: bytes


_OURS_STR = frozenset({CARD_HEADER.lower(), VERDICT_HEADER.lower()})
_AR_STR = results.NAME.lower()
# The same names as received bytes, for the quick look every message gets.
_OURS = frozenset(k.encode("ascii") for k in _OURS_STR)
_AR = _AR_STR.encode("ascii")
_OURS_AND_AR = _OURS | {_AR}


def _fields(message: RawMessage) -> Iterator[_Field]:
    seen: Counter[str] = Counter()
    for raw_name, value in message.headers:
        name = raw_name.decode("ascii", "replace")
        key = name.lower()
        seen[key] += 1
        yield _Field(name, key, seen[key], value)


def _highest_first(doomed: Iterable[_Field]) -> tuple[tuple[str, int], ...]:
    # Deleting the highest index of a name first does not renumber the next one.
    return tuple((f.name, f.index) for f in reversed(list(doomed)))


def deletions(message: RawMessage, authserv_id: str | None) -> tuple[tuple[str, int], ...]:
    """Inbound copies of our headers; Authentication-Results only when ``authserv_id`` is given.

    Indices count from 1 per header name, as ``smfi_chgheader`` does, and come
    highest first so that deleting one does not renumber the next.
    """
    ours = _OURS if authserv_id is None else _OURS_AND_AR
    if not any(n.lower() in ours for n, _v in message.headers):
        return ()  # most mail: no field needs a second look
    return _highest_first(
        f
        for f in _fields(message)
        if f.key in _OURS_STR
        or (
            authserv_id is not None
            and f.key == _AR_STR
            and results.claims_our_id(f.value, authserv_id)
        )
    )


# Fields of which readers may take either instance when they repeat: we read the first.
_SINGLE_MIME_FIELDS = frozenset(
    {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}
)
_SINGLE_MIME_NAMES = tuple(k.encode("ascii") for k in _SINGLE_MIME_FIELDS)


def mime_duplicates(message: RawMessage) -> tuple[tuple[str, int], ...]:
    """Every instance but the first of a repeated top-level MIME field, highest first.

    The milter reads the first instance (a DKIM verifier signs the last): deleting the
    others makes every later reader see the structure that was scanned and cleaned.
    """
    names = [n.lower() for n, _v in message.headers]
    if all(names.count(k) < 2 for k in _SINGLE_MIME_NAMES):
        return ()
    return _highest_first(
        f for f in _fields(message) if f.key in _SINGLE_MIME_FIELDS and f.index > 1
    )


def strip_forged_cards(message: RawMessage) -> Edits:
    """The least the milter always does, even when everything else failed."""
    return Edits(delete=deletions(message, None))
