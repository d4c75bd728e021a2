"""The sandbox issuer's decisions for each test card."""

from __future__ import annotations

import datetime

import pytest

from inboxpay.processor.protocol import ChargeStatus
from inboxpay.processor.sandbox.cards import decide, luhn_ok

from .helpers import card

TODAY = datetime.date(2030, 6, 15)

S, D, A = ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED, ChargeStatus.REQUIRES_ACTION


@pytest.mark.parametrize(
    ("number", "cvc", "exp", "status", "code"),
    [
        ("4242424242424242", "123", (12, 2031), S, None),
        ("5555555555554444", "123", (12, 2031), S, None),
        ("378282246310005", "1234", (12, 2031), S, None),
        ("4000000000000002", "123", (12, 2031), D, "generic_decline"),
        ("4000000000009995", "123", (12, 2031), D, "insufficient_funds"),
        ("4000002500003155", "123", (12, 2031), A, None),
        ("4242424242424242", "000", (12, 2031), D, "incorrect_cvc"),
        ("4000002500003155", "000", (12, 2031), D, "incorrect_cvc"),
        ("4242424242424242", "12", (12, 2031), D, "invalid_cvc"),
        ("378282246310005", "123", (12, 2031), D, "invalid_cvc"),
        ("4242424242424241", "123", (12, 2031), D, "invalid_number"),
        ("42424242", "123", (12, 2031), D, "invalid_number"),
        ("4242424242424242", "123", (5, 2030), D, "expired_card"),
        ("4242424242424242", "123", (6, 2030), S, None),  # good through the month's end
        ("4111111111111111", "123", (12, 2031), D, "test_mode_live_card"),
    ],
)
def test_decide(
    number: str, cvc: str, exp: tuple[int, int], status: ChargeStatus, code: str | None
) -> None:
    outcome = decide(card(number, cvc=cvc, exp_month=exp[0], exp_year=exp[1]), TODAY)
    assert (outcome.status, outcome.decline_code) == (status, code)


def test_luhn() -> None:
    assert luhn_ok("4242424242424242") and luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
