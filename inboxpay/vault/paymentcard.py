"""Validation of the card data a user types in: number, expiry and security code.

Nothing here stores anything. Error messages are fixed strings that never echo the
input, because they end up in API responses and logs, and a card number or security
code in a log puts that log in PCI DSS scope (requirements 3.3 and 3.4). For the same
reason no error is chained to an exception whose text could carry the input.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from types import MappingProxyType

from inboxpay.errors import InboxPayError

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" and "٤"
_SEPARATORS = re.compile(r"[ -]")
_MONTH = re.compile(r"[0-9]{1,2}")
_YEAR = re.compile(r"[0-9]{4}")

#: Card numbers are 12 to 19 digits (ISO/IEC 7812); anything else is a typo.
MIN_LENGTH = 12
MAX_LENGTH = 19

#: The lengths each brand issues. Diners issues 14 (the classic 36/30x range) and 16+.
BRAND_LENGTHS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "visa": frozenset({13, 16, 19}),
        "mastercard": frozenset({16}),
        "amex": frozenset({15}),
        "discover": frozenset(range(16, 20)),
        "jcb": frozenset(range(16, 20)),
        "diners": frozenset(range(14, 20)),
        "unionpay": frozenset(range(16, 20)),
    }
)

#: A year typed this far ahead is a typo (2205 for 2025), not a real card.
MAX_YEARS_AHEAD = 50

# "Anywhere on Earth": a card is valid through the last day of its month, and that day
# ends last at UTC-12. Judging by it never refuses a card that is still valid for the
# user; the processor has the final word on a card that just ran out.
_AOE = datetime.timezone(datetime.timedelta(hours=-12))


class CardDataError(InboxPayError):
    """Card data the user entered is not acceptable; ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_number(text: str) -> str:
    """The digits of ``text``: spaces and dashes are dropped, anything else is an error."""
    if not isinstance(text, str):
        raise CardDataError("invalid_number", "card number must be text")
    digits = _SEPARATORS.sub("", text.strip())
    if not _DIGITS.fullmatch(digits):
        raise CardDataError("invalid_number", "card number must contain only digits")
    return digits


def luhn_ok(number: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1 over a string of ASCII digits."""
    if not _DIGITS.fullmatch(number):
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _prefix(number: str, n: int) -> int:
    return int(number[:n]) if len(number) >= n else -1


def brand(number: str) -> str:
    """The card brand from the issuer prefix of a normalized number, else "unknown"."""
    if not _DIGITS.fullmatch(number):
        return "unknown"
    p1, p2, p3, p4 = (_prefix(number, n) for n in (1, 2, 3, 4))
    if p1 == 4:
        return "visa"
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "mastercard"
    if p2 in (34, 37):
        return "amex"
    # Checked before UnionPay's 62: 622126-622925 is shared, and UnionPay owns it.
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65:
        return "discover"
    if 3528 <= p4 <= 3589:
        return "jcb"
    if 300 <= p3 <= 305 or p4 == 3095 or p2 in (36, 38, 39):
        return "diners"
    if p2 in (62, 81):
        return "unionpay"
    return "unknown"


def validate_number(text: str) -> str:
    """The normalized number, or CardDataError: invalid_number, luhn_failed, unsupported_brand.

    Luhn is checked before the brand: a number that fails it is a typo, whatever it
    starts with, and "check the number" is the more useful answer.
    """
    number = normalize_number(text)
    if not MIN_LENGTH <= len(number) <= MAX_LENGTH:
        raise CardDataError(
            "invalid_number", f"card number must have {MIN_LENGTH} to {MAX_LENGTH} digits"
        )
    if not luhn_ok(number):
        raise CardDataError("luhn_failed", "card number is not valid; check it for typos")
    kind = brand(number)
    if kind not in BRAND_LENGTHS:
        raise CardDataError("unsupported_brand", "this card brand is not supported")
    if len(number) not in BRAND_LENGTHS[kind]:
        raise CardDataError("invalid_number", f"a {kind} card number cannot have this length")
    return number


def _as_int(value: int | str, pattern: re.Pattern[str]) -> int | None:
    # bool is an int subclass; True is not month 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and pattern.fullmatch(value.strip()):
        return int(value.strip())
    return None


def validate_expiry(
    month: int | str, year: int | str, today: datetime.date | None = None
) -> tuple[int, int]:
    """(month, year) as ints, or CardDataError: invalid_expiry, expired_card.

    The year must have four digits: "25" could be 2025 or a typo, and guessing a
    century is how a card gets saved with the wrong expiry.
    """
    m = _as_int(month, _MONTH)
    y = _as_int(year, _YEAR)
    if m is None or not 1 <= m <= 12:
        raise CardDataError("invalid_expiry", "expiry month must be 1 to 12")
    if y is None or not 1000 <= y <= 9999:
        raise CardDataError("invalid_expiry", "expiry year must have four digits")
    if today is None:
        today = datetime.datetime.now(_AOE).date()
    if (y, m) < (today.year, today.month):
        raise CardDataError("expired_card", "the card has expired")
    if y > today.year + MAX_YEARS_AHEAD:
        raise CardDataError("invalid_expiry", "expiry year is too far in the future")
    return m, y


_EXPIRY = re.compile(r"([0-9]{1,2})/([0-9]{2}|[0-9]{4})")


def parse_expiry(text: str, today: datetime.date | None = None) -> tuple[int, int]:
    """(month, year) of an expiry typed as on the card, "MM/YY" (or "MM/YYYY"); else
    CardDataError as :func:`validate_expiry` raises it.

    This is where a two-digit year is read, and nowhere else (clients send what the user
    typed): "YY" is the year ending in those digits that is at most MAX_YEARS_AHEAD years
    ahead and less than 100 - MAX_YEARS_AHEAD behind, so "29" is 2029 and "99" is 1999,
    an expired card rather than one saved with a wrong expiry. The day is
    Anywhere-on-Earth's, as for every expiry.
    """
    match = _EXPIRY.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise CardDataError("invalid_expiry", "expiry must be written MM/YY or MM/YYYY")
    if today is None:
        today = datetime.datetime.now(_AOE).date()
    month, year = int(match[1]), int(match[2])
    if len(match[2]) == 2:
        year += today.year - today.year % 100
        if year > today.year + MAX_YEARS_AHEAD:
            year -= 100
        elif year <= today.year + MAX_YEARS_AHEAD - 100:
            year += 100
    return validate_expiry(month, year, today)


def validate_security_code(code: str, brand: str) -> str:
    """The code if well formed (amex: 4 digits, others: 3), else invalid_security_code.

    The code is only passed through to the processor: it must never be stored, logged
    or cached, not even encrypted (PCI DSS 3.3.1.2).
    """
    expected = 4 if brand == "amex" else 3
    value = code.strip() if isinstance(code, str) else ""
    if len(value) != expected or not _DIGITS.fullmatch(value):
        raise CardDataError(
            "invalid_security_code", f"security code must be {expected} digits for this card"
        )
    return value


def last4(number: str) -> str:
    """The last four digits, the only part of the number kept in clear."""
    digits = normalize_number(number)
    if len(digits) < 4:
        raise CardDataError("invalid_number", "card number is too short")
    return digits[-4:]
