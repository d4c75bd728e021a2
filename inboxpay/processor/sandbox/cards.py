"""The sandbox's issuer: what each test card does, like the industry's test cards.

Checks run in this order, and the first that fails decides:

=================================  ===================  ==============================
Card                               Status               decline_code
=================================  ===================  ==============================
not 12-19 digits, or bad Luhn      declined             ``invalid_number``
expiry before this month (UTC)     declined             ``expired_card``
security code not 3 digits (4 for  declined             ``invalid_cvc``
American Express)
security code ``000``              declined             ``incorrect_cvc``
4242 4242 4242 4242,               succeeded
5555 5555 5555 4444, 3782 822463 10005
4000 0000 0000 0002                declined             ``generic_decline``
4000 0000 0000 9995                declined             ``insufficient_funds``
4000 0025 0000 3155                requires_action      (3-D Secure challenge)
any other well-formed number       declined             ``test_mode_live_card``
=================================  ===================  ==============================

A real card number is declined: a sandbox that appeared to accept one would invite
people to test with their own cards.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from inboxpay.processor.protocol import CardSecret, ChargeStatus

SUCCEEDS = frozenset({"4242424242424242", "5555555555554444", "378282246310005"})
DECLINES = {"4000000000000002": "generic_decline", "4000000000009995": "insufficient_funds"}
REQUIRES_3DS = frozenset({"4000002500003155"})
AUTHENTICATION_FAILED = "authentication_failed"


@dataclass(frozen=True)
class Outcome:
    status: ChargeStatus
    decline_code: str | None = None


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _declined(code: str) -> Outcome:
    return Outcome(ChargeStatus.DECLINED, code)


def decide(card: CardSecret, today: datetime.date) -> Outcome:
    number = card.number
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19 and luhn_ok(number)):
        return _declined("invalid_number")
    # A card is good through the last day of its expiry month.
    if (card.exp_year, card.exp_month) < (today.year, today.month):
        return _declined("expired_card")
    cvc_length = 4 if number[:2] in ("34", "37") else 3
    if not (card.cvc.isascii() and card.cvc.isdigit() and len(card.cvc) == cvc_length):
        return _declined("invalid_cvc")
    if card.cvc == "000":
        return _declined("incorrect_cvc")
    if number in SUCCEEDS:
        return Outcome(ChargeStatus.SUCCEEDED)
    if number in DECLINES:
        return _declined(DECLINES[number])
    if number in REQUIRES_3DS:
        return Outcome(ChargeStatus.REQUIRES_ACTION)
    return _declined("test_mode_live_card")
