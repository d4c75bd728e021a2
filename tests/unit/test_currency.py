"""ISO 4217 exponents and exact minor-unit conversion."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from inboxpay.currency import (
    EXPONENTS,
    CurrencyError,
    InexactAmount,
    UnknownCurrency,
    exponent,
    format_minor,
    to_minor,
)
from inboxpay.errors import InboxPayError


@pytest.mark.parametrize(
    ("code", "places"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("XOF", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("UYW", 4),
        ("UYI", 0),
        ("XCG", 2),
        ("ZWG", 2),
        ("SLE", 2),
        ("VED", 2),
    ],
)
def test_exponent(code: str, places: int) -> None:
    assert exponent(code) == places


@pytest.mark.parametrize(
    "code", ["XYZ", "usd", "", "US", "USDD", "XAU", "XXX", "XTS", "HRK", "CUC"]
)
def test_unknown_currency(code: str) -> None:
    with pytest.raises(UnknownCurrency) as caught:
        exponent(code)
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, InboxPayError)
    assert caught.value.code == code
    assert str(caught.value) == f"unknown currency {code!r}"


def test_table_is_well_formed() -> None:
    assert len(EXPONENTS) > 150
    for code, places in EXPONENTS.items():
        assert re.fullmatch(r"[A-Z]{3}", code)
        assert places in (0, 2, 3, 4)
    with pytest.raises(TypeError):
        EXPONENTS["ABC"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        ("12.30", "USD", 1230),
        ("12.3", "USD", 1230),
        ("12", "USD", 1200),
        ("0.01", "USD", 1),
        ("1.500", "USD", 150),  # trailing zeros are exact
        ("1234", "JPY", 1234),
        ("1234.000", "JPY", 1234),
        ("7E+1", "JPY", 70),
        ("1.5", "BHD", 1500),
        ("1.234", "BHD", 1234),
        ("0.0001", "CLF", 1),
        ("-12.30", "USD", -1230),
        ("0", "USD", 0),
        ("-0.00", "USD", 0),
        ("99999999999999999999999999999999.99", "USD", 9999999999999999999999999999999999),
    ],
)
def test_to_minor(amount: str, code: str, minor: int) -> None:
    assert to_minor(Decimal(amount), code) == minor


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("1.005", "USD"),
        ("0.001", "USD"),
        ("1.5", "JPY"),
        ("0.0001", "BHD"),
        ("0.00001", "CLF"),
        ("NaN", "USD"),
        ("sNaN", "USD"),
        ("Infinity", "USD"),
        ("-Infinity", "USD"),
        ("1E+999999999", "USD"),  # must not build a huge integer
        ("1E-999999999", "USD"),
        ("1" * 50, "USD"),
    ],
)
def test_to_minor_rejects_inexact(amount: str, code: str) -> None:
    with pytest.raises(InexactAmount) as caught:
        to_minor(Decimal(amount), code)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, CurrencyError)


def test_to_minor_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        to_minor(Decimal("1.00"), "ABC")


@pytest.mark.parametrize(
    ("minor", "code", "text"),
    [
        (123450, "USD", "1234.50"),
        (5, "USD", "0.05"),
        (0, "USD", "0.00"),
        (-5, "USD", "-0.05"),
        (1234, "JPY", "1234"),
        (1500, "BHD", "1.500"),
        (1, "BHD", "0.001"),
        (10000, "CLF", "1.0000"),
        (12345678, "UYW", "1234.5678"),
    ],
)
def test_format_minor(minor: int, code: str, text: str) -> None:
    assert format_minor(minor, code) == text


@pytest.mark.parametrize("code", ["USD", "JPY", "BHD", "CLF"])
@pytest.mark.parametrize("minor", [0, 1, 9, 10, 99, 100, 101, 123456789, 10**15 + 7])
def test_round_trip(code: str, minor: int) -> None:
    assert to_minor(Decimal(format_minor(minor, code)), code) == minor
