"""Outlook's SignedActionRequest (dynamic senders): a JWS whose payload carries the
ActionRequest as a string, signed RS256 by the partner.

Reading and verifying are two steps. :func:`read_signed` decodes the payload without
trusting it, so that the invoice can be parsed with every other request; the verdict
(:mod:`inboxpay.milter.decide`) then calls :func:`check_signed` with the partner's keys,
and a request that fails it never earns a card. Both steps look at the same compact JWS,
so what was parsed is exactly what the signature covers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from inboxpay.errors import InboxPayError
from inboxpay.invoice.model import InvalidInvoice

#: Only the partner's own asymmetric signature: never "none", never an HMAC.
ALGORITHMS = ("RS256",)
MAX_JWS = 64 * 1024
# A clock a little ahead of ours is not an attack; a request from the future is.
CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class SignedRequest:
    """The claims of a SignedActionRequest's payload, read but not yet verified."""

    jws: str
    originator: str
    sender: str
    subject: str
    issued_at: int
    action_request: dict[str, object]


class SignedRequestRefused(InboxPayError):
    """A signed request that earns no card; ``reason`` is the verdict's token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def read_signed(data: dict[str, object]) -> SignedRequest:
    """The payload of a ``SignedActionRequest`` node; InvalidInvoice when malformed."""
    token = data.get("signedActionRequest")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_JWS:
        raise InvalidInvoice("signedActionRequest is not a compact JWS")
    pieces = token.strip().split(".")
    if len(pieces) != 3:
        raise InvalidInvoice("signedActionRequest is not a compact JWS")
    try:
        payload = json.loads(_b64url(pieces[1]), parse_float=Decimal)
    except (ValueError, RecursionError):
        raise InvalidInvoice("signedActionRequest payload is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidInvoice("signedActionRequest payload is not an object")
    serialized = payload.get("actionRequestSerialized")
    texts = {k: payload.get(k) for k in ("originator", "sender", "sub")}
    if not isinstance(serialized, str) or not all(isinstance(v, str) for v in texts.values()):
        raise InvalidInvoice("signed request lacks originator, sender, sub or its ActionRequest")
    try:
        action_request = json.loads(serialized, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise InvalidInvoice("actionRequestSerialized is not JSON") from None
    if not isinstance(action_request, dict):
        raise InvalidInvoice("actionRequestSerialized is not an object")
    return SignedRequest(
        jws=token.strip(),
        originator=str(texts["originator"]),
        sender=str(texts["sender"]),
        subject=str(texts["sub"]),
        issued_at=_issued_at(payload.get("iat")),
        action_request=action_request,
    )


def check_signed(
    request: SignedRequest,
    keys: Sequence[RSAKey],
    from_address: str,
    now: float,
    max_age_seconds: int,
) -> None:
    """Raise SignedRequestRefused unless one of ``keys`` signed it, for this From, lately."""
    if not any(_verifies(request.jws, key) for key in keys):
        raise SignedRequestRefused("bad_request_signature", "no partner key verifies it")
    if request.sender.casefold() != from_address.casefold():
        raise SignedRequestRefused("request_sender_mismatch", "sender is not the From address")
    if not now - max_age_seconds <= request.issued_at <= now + CLOCK_SKEW_SECONDS:
        raise SignedRequestRefused("request_expired", "iat is outside the accepted age")


def _verifies(token: str, key: RSAKey) -> bool:
    try:
        jws.deserialize_compact(token, key, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError):
        return False
    return True


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInvoice("signedActionRequest is not base64url") from None


def _issued_at(value: object) -> int:
    """``iat`` as published: a number, or digits in a string ("1532995422")."""
    if isinstance(value, bool):
        raise InvalidInvoice("iat is not a time")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise InvalidInvoice("iat is not a time")
