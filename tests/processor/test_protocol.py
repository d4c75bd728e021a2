"""The wire format: round trips, and errors that name the field but never the value."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from inboxpay.processor.errors import MalformedMessage
from inboxpay.processor.protocol import (
    CardSecret,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    error_code_of,
    is_http_url,
    origin_of,
)

from .helpers import card, request

JWE = "a.b.c.d.e"


def test_request_round_trip() -> None:
    req = request(return_url="https://mail.example/pay/1?done=1")
    body = req.to_json(JWE)
    assert body["payment_method"] == JWE
    assert set(body) == {
        "idempotency_key",
        "amount_minor",
        "currency",
        "merchant",
        "invoice",
        "payment_method",
        "return_url",
    }
    assert ChargeRequest.from_json(body) == (req, JWE)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("amount_minor", "12.50", "amount_minor"),
        ("amount_minor", True, "amount_minor"),
        ("amount_minor", 0, "amount_minor"),
        ("currency", "usd", "currency"),
        ("idempotency_key", "has space", "idempotency_key"),
        ("payment_method", "4242424242424242", "payment_method"),
        ("return_url", "javascript:alert(1)", "return_url"),
        ("return_url", "https://user:pw@evil.example/", "return_url"),
        ("invoice", {"number": "1", "url": "ftp://x.example/"}, "invoice.url"),
        ("merchant", {"partner": "xero", "account": "", "name": ""}, "merchant.name"),
    ],
)
def test_request_errors_name_the_field_not_the_value(field: str, value: Any, named: str) -> None:
    body = request().to_json(JWE)
    body[field] = value
    with pytest.raises(MalformedMessage) as e:
        ChargeRequest.from_json(body)
    assert str(e.value).startswith(named + ":")
    if isinstance(value, str):
        assert value not in str(e.value)


def test_result_round_trip_and_consistency() -> None:
    result = ChargeResult(
        id="ch_1",
        idempotency_key="k",
        status=ChargeStatus.DECLINED,
        decline_code="insufficient_funds",
        challenge_url=None,
        amount_minor=100,
        currency="EUR",
        created=datetime.datetime(2030, 1, 31, 12, tzinfo=datetime.UTC),
    )
    data = result.to_json()
    assert data["created"] == "2030-01-31T12:00:00Z"
    assert ChargeResult.from_json(data) == result
    with pytest.raises(MalformedMessage, match="decline_code"):
        ChargeResult.from_json({**data, "decline_code": None})
    with pytest.raises(MalformedMessage, match="challenge_url"):
        ChargeResult.from_json({**data, "status": "requires_action", "decline_code": None})
    with pytest.raises(MalformedMessage, match="id"):
        ChargeResult.from_json({**data, "id": "../ledger"})


def test_card_repr_shows_last4_only() -> None:
    c = card("4242424242424242", cvc="987")
    text = repr(c) + str(c) + f"{c}"
    assert "4242424242424242" not in text and "987" not in text and "Ada" not in text
    assert "4242" in text


def test_card_plaintext_round_trip() -> None:
    c = card()
    assert CardSecret.from_plaintext(c.to_plaintext()) == c


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://mail.example/pay?x=1#y", True),
        ("http://127.0.0.1:8080/back", True),
        ("http://[::1]:8080/back", True),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//mail.example/x", False),
        ("https://mail.example/a b", False),
        ('https://mail.example/"><script>', False),
        ("https://u@mail.example/", False),
        ("https://mail.example:99999/", False),
        ("https://mail.example;script-src *", False),
    ],
)
def test_is_http_url(url: str, ok: bool) -> None:
    assert is_http_url(url) is ok


def test_origin_of() -> None:
    assert origin_of("https://Mail.Example:8443/x?y") == "https://mail.example:8443"


def test_error_code_of_keeps_only_well_formed_codes() -> None:
    assert error_code_of({"error": {"code": "idempotency_mismatch"}}) == "idempotency_mismatch"
    assert error_code_of({"error": {"code": "4242424242424242 declined!"}}) is None
    assert error_code_of("<html>Not Found</html>") is None
