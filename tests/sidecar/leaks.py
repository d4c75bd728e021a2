"""What a leak of card data or credentials looks like, for scanning stored bytes and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .harness import GOOD_CODE, TEST_NUMBERS, WRONG_CODE, spaced

#: A security code used by the leak test only, with the card it goes with.
AMEX = "378282246310005"
AMEX_CODE = "4821"
CODES = (GOOD_CODE, WRONG_CODE, AMEX_CODE)
NUMBERS = (*TEST_NUMBERS, AMEX)
_CODE_KEYS = rb"(?i)(?:cvc|cvv|csc|cid|security_?code|card_?code)\W{0,12}"


def number_forms(number: str) -> list[bytes]:
    """The ways a number may be written down: plain, spaced, dashed, hex (pg_dump bytea)."""
    forms = [number, spaced(number), spaced(number).replace(" ", "-")]
    return [f.encode() for f in forms] + [number.encode().hex().encode()]


def code_near_key(code: str) -> re.Pattern[bytes]:
    return re.compile(_CODE_KEYS + code.encode())


def assert_no_secrets(place: str, data: bytes, tokens: Iterable[str]) -> None:
    """No test card number, no security code next to its key (nor the distinctive ones as
    a JSON string anywhere), no bearer token or token signature in ``data``."""
    for number in NUMBERS:
        for form in number_forms(number):
            assert form not in data, f"{place} holds card number {number} as {form!r}"
    for code in CODES:
        found = code_near_key(code).search(data)
        assert found is None, f"{place} holds a security code: {found and found.group(0)!r}"
    for code in (GOOD_CODE, AMEX_CODE):
        assert b'"' + code.encode() + b'"' not in data, f"{place} holds security code {code}"
    for token in tokens:
        assert token.encode() not in data, f"{place} holds a bearer token"
        signature = token.rsplit(".", 1)[1]
        assert signature.encode() not in data, f"{place} holds a bearer token's signature"
