"""Assertions about delivered mail; each message names the Postfix queue id."""

from __future__ import annotations

import re
from typing import Any

from inboxpay.card.header import CardVerifier

from . import rawmime
from .mail import Delivery
from .world import AUTHSERV_ID

CARD = "InboxPay-Card"
VERDICT = "InboxPay-Verdict"
AR = "Authentication-Results"
# Header fields Postfix itself adds on the way in and on delivery.
POSTFIX_FIELDS = {"return-path", "x-original-to", "delivered-to", "received"}
# Header fields the milter itself adds besides Authentication-Results.
MILTER_FIELDS = {CARD.lower(), VERDICT.lower()}
_OURS = re.compile(r"^\s*" + re.escape(AUTHSERV_ID) + r"(\s+\d+)?\s*;", re.IGNORECASE)


def where(d: Delivery) -> str:
    return f"[queue id {d.queue_id}, rcpt {d.recipient}]"


def is_ours(ar_value: str) -> bool:
    return _OURS.match(ar_value) is not None


def no_ar_of_ours(d: Delivery) -> None:
    """Mail that could earn no card: no Authentication-Results of ours (authentication_results
    = "payment"), and none forged under our name left."""
    ours = [f for f in rawmime.fields(d.raw) if f.is_named(AR) and is_ours(f.value)]
    assert ours == [], f"{where(d)} expected no {AR}: {AUTHSERV_ID}, got {len(ours)}"


def our_ar(d: Delivery) -> str:
    """Our one Authentication-Results value, checked to sit above the original header."""
    fs = rawmime.fields(d.raw)
    ours = [i for i, f in enumerate(fs) if f.is_named(AR) and is_ours(f.value)]
    assert len(ours) == 1, f"{where(d)} expected one {AR}: {AUTHSERV_ID}, got {len(ours)}"
    index = ours[0]
    others = [i for i, f in enumerate(fs) if f.is_named(AR) and i != index]
    assert all(i > index for i in others), f"{where(d)} another {AR} is above ours"
    added = POSTFIX_FIELDS | MILTER_FIELDS
    first_original = next(i for i, f in enumerate(fs) if f.name.lower() not in added and i != index)
    assert index < first_original, (
        f"{where(d)} our {AR} is below the message's own header {fs[first_original].name}"
    )
    value = fs[index].value
    assert "spf=" in value and "dkim=" in value, f"{where(d)} {AR} lacks spf= or dkim=: {value}"
    return value


def verdict(d: Delivery) -> tuple[str, dict[str, str]]:
    """The InboxPay-Verdict as (verdict, {param: value})."""
    found = rawmime.values(d.raw, VERDICT)
    assert len(found) == 1, f"{where(d)} expected one {VERDICT}, got {found}"
    first, *params = (p.strip() for p in found[0].split(";"))
    return first.lower(), dict(p.partition("=")[::2] for p in params if p)


def assert_removed(d: Delivery, *reasons: str) -> None:
    got, params = verdict(d)
    assert got == "removed", f"{where(d)} verdict {got!r} {params}, expected removed"
    assert params.get("reason") in reasons, (
        f"{where(d)} removal reason {params.get('reason')!r}, expected one of {reasons}"
    )
    assert_no_card(d)


def assert_no_card(d: Delivery) -> None:
    cards = rawmime.values(d.raw, CARD)
    assert cards == [], f"{where(d)} unexpected {CARD}: {cards}"


def card_claims(d: Delivery, verifier: CardVerifier) -> dict[str, Any]:
    """The claims of the single card, verified with the session's public key."""
    got, params = verdict(d)
    assert got == "card", f"{where(d)} verdict {got!r} {params}, expected card"
    cards = rawmime.values(d.raw, CARD)
    assert len(cards) == 1, f"{where(d)} expected one {CARD}, got {len(cards)}"
    return verifier.verify(cards[0])


def recipient_hashes(claims: dict[str, Any]) -> list[str]:
    rcpt = claims["rcpt"]
    return list(rcpt) if isinstance(rcpt, list) else [rcpt]


def assert_body_unchanged(sent: bytes, d: Delivery) -> None:
    assert rawmime.split(d.raw)[1] == rawmime.split(sent)[1], f"{where(d)} body changed"


def assert_headers_kept(sent: bytes, d: Delivery) -> None:
    delivered = set(rawmime.header_lines(d.raw))
    missing = [line for line in rawmime.header_lines(sent) if line not in delivered]
    assert missing == [], f"{where(d)} original header lines missing: {missing}"


def added_fields(sent: bytes, d: Delivery) -> list[str]:
    """Names of fields in the delivery that neither the sender nor Postfix wrote."""
    original = {(f.name.lower(), f.value) for f in rawmime.fields(sent)}
    return [
        f.name
        for f in rawmime.fields(d.raw)
        if (f.name.lower(), f.value) not in original and f.name.lower() not in POSTFIX_FIELDS
    ]


def has_markup(html: bytes) -> bool:
    return b"application/ld+json" in html or b'"Invoice"' in html


def _visible_lines(html: bytes) -> list[bytes]:
    """The HTML's lines other than the JSON-LD script element (one per line in test mail)."""
    lines = (line.strip() for line in html.splitlines())
    return [line for line in lines if line and not has_markup(line) and line != b"</script>"]


def assert_markup_removed(sent: bytes, d: Delivery) -> None:
    """No JSON-LD left in any HTML part, the rest of the HTML kept, other parts byte-identical."""
    html = rawmime.html_parts(d.raw)
    sent_html = rawmime.html_parts(sent)
    assert len(html) == len(sent_html), f"{where(d)} {len(sent_html)} HTML parts became {len(html)}"
    assert not any(has_markup(h) for h in html), f"{where(d)} payment markup still in the HTML"
    for before, after in zip(sent_html, html, strict=True):
        lost = [line for line in _visible_lines(before) if line not in after]
        assert lost == [], f"{where(d)} HTML lost more than the markup: {lost[:3]}"
    assert rawmime.other_parts(d.raw) == rawmime.other_parts(sent), (
        f"{where(d)} a non-HTML part changed"
    )
