"""The processor wire protocol, version 1: its messages, with the rules they are checked by.

The protocol (transport, errors, ``POST /v1/charges``, the JWE-sealed card, idempotency,
the charge lookups, 3-D Secure, and what an adapter for a real processor must implement)
is specified in docs/processor-protocol.md; keep the two in step. The sandbox processor
(:mod:`inboxpay.processor.sandbox`) is its reference implementation.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from inboxpay.currency import EXPONENTS
from inboxpay.processor.errors import MalformedMessage

MAX_AMOUNT_MINOR = 10**15
MAX_URL_LENGTH = 2048
MAX_TEXT_LENGTH = 200
MAX_JWE_LENGTH = 8192

# Patterns are used with fullmatch: "$" would also match before a trailing newline.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
CHARGE_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_DIGITS = re.compile(r"[0-9]+")
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"


class ErrorCode(StrEnum):
    UNAUTHORIZED = "unauthorized"
    INVALID_REQUEST = "invalid_request"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
    IDEMPOTENCY_IN_FLIGHT = "idempotency_in_flight"
    CHARGE_NOT_FOUND = "charge_not_found"
    NOT_FOUND = "not_found"
    INTERNAL_ERROR = "internal_error"


# --- field readers: errors name the field and the rule, never the value ---


def _object(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise MalformedMessage(f"{where}: expected a JSON object")
    return data


def _text(data: Mapping[str, Any], key: str, where: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise MalformedMessage(f"{where}{key}: expected a string of 1-{max_length} characters")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
        raise MalformedMessage(f"{where}{key}: expected a string of 0-{MAX_TEXT_LENGTH} characters")
    return value


def _int(data: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = data.get(key)
    # bool is an int in Python, but true is not an amount.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MalformedMessage(f"{where}{key}: expected an integer {low}-{high}")
    return value


def _currency(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or value not in EXPONENTS:
        raise MalformedMessage(f"{where}{key}: expected an ISO 4217 currency code")
    return value


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL that is safe to redirect a browser to and to put in a CSP.

    Printable ASCII only (no spaces, quotes or angle brackets that could break out of an
    HTML attribute or a header), a plain host name or IP literal, no ``user:password@``.
    """
    if not 1 <= len(url) <= MAX_URL_LENGTH or any(c in "\"'<>\\`" for c in url):
        return False
    if not all(0x21 <= ord(c) < 0x7F for c in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        return False
    host = parts.hostname or ""
    return (
        parts.scheme in ("http", "https")
        and "@" not in parts.netloc
        and (bool(_HOST_NAME.fullmatch(host)) or _is_ip_literal(parts.netloc))
    )


def _is_ip_literal(netloc: str) -> bool:
    if not netloc.startswith("["):
        return False
    try:
        ipaddress.IPv6Address(netloc[1 : netloc.find("]")])
    except ValueError:
        return False
    return True


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL that passed :func:`is_http_url`."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _url(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not is_http_url(value):
        raise MalformedMessage(f"{where}{key}: expected an absolute http or https URL")
    return value


def _timestamp(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(data: Mapping[str, Any], key: str) -> datetime.datetime:
    value = data.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise MalformedMessage(f"{key}: expected an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise MalformedMessage(f"{key}: expected a timestamp with a time zone")
    return parsed.astimezone(datetime.UTC)


# --- the charge request ---


@dataclass(frozen=True)
class Merchant:
    partner: str  # the partner id of the config ("xero")
    account: str  # the merchant's account at the partner; "" when not known
    name: str


@dataclass(frozen=True)
class InvoiceRef:
    number: str
    url: str


@dataclass(frozen=True)
class ChargeRequest:
    """Everything of ``POST /v1/charges`` but the card, which travels sealed."""

    idempotency_key: str
    amount_minor: int
    currency: str
    merchant: Merchant
    invoice: InvoiceRef
    return_url: str | None = None

    def fields_json(self) -> dict[str, Any]:
        """The request body without ``payment_method``: what idempotency compares."""
        return {
            "idempotency_key": self.idempotency_key,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "merchant": {
                "partner": self.merchant.partner,
                "account": self.merchant.account,
                "name": self.merchant.name,
            },
            "invoice": {"number": self.invoice.number, "url": self.invoice.url},
            "return_url": self.return_url,
        }

    def to_json(self, payment_method: str) -> dict[str, Any]:
        return {**self.fields_json(), "payment_method": payment_method}

    @classmethod
    def from_json(cls, data: object) -> tuple[ChargeRequest, str]:
        """The request and its sealed ``payment_method``; MalformedMessage names the field."""
        body = _object(data, "body")
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
            raise MalformedMessage("idempotency_key: expected 1-255 printable ASCII characters")
        merchant = _object(body.get("merchant"), "merchant")
        invoice = _object(body.get("invoice"), "invoice")
        payment_method = body.get("payment_method")
        if (
            not isinstance(payment_method, str)
            or len(payment_method) > MAX_JWE_LENGTH
            or payment_method.count(".") != 4
        ):
            raise MalformedMessage("payment_method: expected a JWE compact serialization")
        request = cls(
            idempotency_key=key,
            amount_minor=_int(body, "amount_minor", "", 1, MAX_AMOUNT_MINOR),
            currency=_currency(body, "currency", ""),
            merchant=Merchant(
                partner=_text(merchant, "partner", "merchant."),
                account=_optional_text(merchant, "account", "merchant."),
                name=_text(merchant, "name", "merchant."),
            ),
            invoice=InvoiceRef(
                number=_text(invoice, "number", "invoice."),
                url=_url(invoice, "url", "invoice."),
            ),
            return_url=None if body.get("return_url") is None else _url(body, "return_url", ""),
        )
        return request, payment_method


# --- the card, sealed inside payment_method ---


@dataclass(frozen=True)
class BillingAddress:
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


_ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country")


@dataclass(frozen=True, repr=False)
class CardSecret:
    """The plaintext of ``payment_method``. Lives only as long as the charge call.

    ``repr`` shows the last four digits only, so a stray log line or a traceback with
    locals shows no card data. Values are not validated here: the processor judges them.
    """

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str
    billing_address: BillingAddress = field(default_factory=BillingAddress)

    def __repr__(self) -> str:
        return f"CardSecret(last4={self.last4!r}, exp={self.exp_month:02d}/{self.exp_year})"

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def to_plaintext(self) -> dict[str, Any]:
        a = self.billing_address
        return {
            "number": self.number,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "cvc": self.cvc,
            "name": self.name,
            "billing_address": {k: getattr(a, k) for k in _ADDRESS_FIELDS},
        }

    @classmethod
    def from_plaintext(cls, data: object) -> CardSecret:
        card = _object(data, "payment_method plaintext")
        where = "payment_method."
        for key in ("number", "cvc"):
            value = card.get(key)
            if (
                not isinstance(value, str)
                or not 1 <= len(value) <= 32
                or not _DIGITS.fullmatch(value)
            ):
                raise MalformedMessage(f"{where}{key}: expected a string of digits")
        address = _object(card.get("billing_address", {}), f"{where}billing_address")
        return cls(
            number=card["number"],
            exp_month=_int(card, "exp_month", where, 1, 12),
            exp_year=_int(card, "exp_year", where, 1000, 9999),
            cvc=card["cvc"],
            name=_text(card, "name", where),
            billing_address=BillingAddress(
                **{
                    k: _optional_text(address, k, f"{where}billing_address.")
                    for k in _ADDRESS_FIELDS
                }
            ),
        )


# --- the charge ---


@dataclass(frozen=True)
class ChargeResult:
    id: str
    idempotency_key: str
    status: ChargeStatus
    decline_code: str | None
    challenge_url: str | None
    amount_minor: int
    currency: str
    created: datetime.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "status": self.status.value,
            "decline_code": self.decline_code,
            "challenge_url": self.challenge_url,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "created": _timestamp(self.created),
        }

    @classmethod
    def from_json(cls, data: object) -> ChargeResult:
        body = _object(data, "charge")
        charge_id = body.get("id")
        if not isinstance(charge_id, str) or not CHARGE_ID.fullmatch(charge_id):
            raise MalformedMessage("id: expected 1-255 characters of [A-Za-z0-9_-]")
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
            raise MalformedMessage("idempotency_key: expected 1-255 printable ASCII characters")
        raw_status = body.get("status")
        if raw_status not in tuple(ChargeStatus):
            raise MalformedMessage("status: expected succeeded, declined or requires_action")
        status = ChargeStatus(raw_status)
        decline_code = body.get("decline_code")
        if (status is ChargeStatus.DECLINED) != (decline_code is not None) or (
            decline_code is not None
            and not (isinstance(decline_code, str) and _ERROR_CODE.fullmatch(decline_code))
        ):
            raise MalformedMessage("decline_code: expected a code exactly when declined")
        challenge_url = body.get("challenge_url")
        if (status is ChargeStatus.REQUIRES_ACTION) != (challenge_url is not None) or (
            challenge_url is not None
            and not (isinstance(challenge_url, str) and is_http_url(challenge_url))
        ):
            raise MalformedMessage("challenge_url: expected a URL exactly when requires_action")
        return cls(
            id=charge_id,
            idempotency_key=key,
            status=status,
            decline_code=decline_code,
            challenge_url=challenge_url,
            amount_minor=_int(body, "amount_minor", "", 1, MAX_AMOUNT_MINOR),
            currency=_currency(body, "currency", ""),
            created=_parse_timestamp(body, "created"),
        )


# --- errors on the wire ---


def error_json(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"error": {"code": code.value, "message": message}}


def error_code_of(data: object) -> str | None:
    """The ``error.code`` of an error body, or None when the body is not one."""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
        # Only well-formed codes travel on into exception messages and logs.
        if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
            return code
    return None


def ledger_from_json(data: object) -> list[ChargeResult]:
    body = _object(data, "ledger")
    charges = body.get("charges")
    if not isinstance(charges, list):
        raise MalformedMessage("charges: expected a list")
    return [ChargeResult.from_json(c) for c in charges]
