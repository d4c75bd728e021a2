"""ISO 4217 currencies and exact conversion between decimal amounts and integer minor units.

Money never goes through float and is never rounded: an amount that the currency's minor
unit cannot express exactly (``1.005`` USD) is an error, not a cent more or less.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

from inboxpay.errors import InboxPayError

# ISO 4217 List One as published for 2026-01-01: every code with a numeric minor unit.
# Left out on purpose: the "N.A." units (XAU, XAG, XPD, XPT, XBA-XBD, XDR, XSU, XUA, XTS,
# XXX), which are not money one pays an invoice in, and withdrawn codes (ANG, BGN, CUC,
# HRK, SLL, ZWL). Update this table with each ISO amendment; nothing else depends on it.
_EXPONENTS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
    "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2,
    "COP": 2, "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2,
    "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2,
    "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2,
    "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3,
    "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2,
    "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2,
    "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2,
    "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2,
    "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2,
    "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2,
    "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2,
    "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2,
    "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2,
    "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0,
    "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAD": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0,
    "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

EXPONENTS = MappingProxyType(_EXPONENTS)

# Far beyond any invoice, but small enough that a hostile "1E+999999999" cannot make us
# build a gigantic integer before the caller's own limit rejects it.
_MAX_DIGITS = 40


class CurrencyError(InboxPayError):
    """An amount or currency code that cannot be money."""


class UnknownCurrency(CurrencyError, KeyError):
    """The code is not an active ISO 4217 currency (codes are upper case, exactly three letters)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code

    def __str__(self) -> str:  # KeyError would print the repr of the code
        return f"unknown currency {self.code!r}"


class InexactAmount(CurrencyError, ValueError):
    """The amount is not a finite number of the currency's minor units."""


def exponent(code: str) -> int:
    """The number of minor-unit digits of ``code`` (USD 2, JPY 0, BHD 3, CLF 4)."""
    try:
        return _EXPONENTS[code]
    except KeyError:
        raise UnknownCurrency(code) from None


def to_minor(amount: Decimal, code: str) -> int:
    """``amount`` in minor units of ``code``, exactly: ``Decimal("12.30")`` USD is 1230.

    Raises InexactAmount when the amount is not finite or needs more precision than the
    currency has (``Decimal("1.005")`` USD); trailing zeros are fine (``1.500`` USD is 150).
    """
    exp = exponent(code)
    if not amount.is_finite():
        raise InexactAmount(f"{amount} is not a finite amount")
    sign, digits, power = amount.as_tuple()
    assert isinstance(power, int)  # finite, so not the "n"/"N"/"F" of a special value
    # Work on the digit tuple: Decimal arithmetic would round at the context precision.
    while len(digits) > 1 and digits[-1] == 0:
        digits, power = digits[:-1], power + 1
    if digits == (0,):
        return 0
    shift = power + exp
    if shift < 0:
        raise InexactAmount(f"{amount} has more than {exp} decimal places for {code}")
    if len(digits) + shift > _MAX_DIGITS:
        raise InexactAmount(f"{amount} is too large")
    magnitude = int("".join(map(str, digits)) + "0" * shift)
    return -magnitude if sign else magnitude


def format_minor(minor: int, code: str) -> str:
    """A plain decimal string at the currency's exponent: "1234.50", JPY "1234", BHD "1.500"."""
    exp = exponent(code)
    sign = "-" if minor < 0 else ""
    units, fraction = divmod(abs(minor), 10**exp)
    if exp == 0:
        return f"{sign}{units}"
    return f"{sign}{units}.{fraction:0{exp}d}"
