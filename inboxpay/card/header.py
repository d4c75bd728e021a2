"""The InboxPay-Card header: a JWS (RFC 7515) signed with Ed25519 (RFC 8037).

The public spec is docs/card-format.md.

The milter signs, the sidecar and webmail verify. Readers strip all whitespace
first, because MTAs may fold the header anywhere.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import json
import re
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from inboxpay import addresses
from inboxpay.errors import InboxPayError

HEADER = "InboxPay-Card"
VERDICT_HEADER = "InboxPay-Verdict"
VERSION = 1
ALG = "EdDSA"
_WHITESPACE = re.compile(r"\s+")
_FOLD_WIDTH = 76


class CardError(InboxPayError):
    """A card value that is malformed, signed by an unknown or retired key, or badly signed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def recipient_hash(key: bytes, address: str) -> str:
    """HMAC-SHA256 of the normalised address (``addresses.normalize``), base64url unpadded."""
    digest = hmac.new(key, addresses.normalize(address).encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_card_id() -> str:
    return uuid.uuid4().hex


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True)
class CardSigner:
    key: OKPKey
    kid: str

    @functools.cached_property
    def _protected(self) -> bytes:
        """The encoded JWS header, the same for every card of this key."""
        # RFC 9864 deprecates the polymorphic "EdDSA" name; the card format pins it
        # (RFC 8037) because that is what every JOSE library in the field verifies.
        header = {"alg": ALG, "kid": self.kid, "typ": "inboxpay-card+jws"}
        return _b64(json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode())

    @functools.cached_property
    def _private(self) -> Ed25519PrivateKey:
        key = self.key.private_key
        if not isinstance(key, Ed25519PrivateKey):  # card/keys.py loads no other kind
            raise TypeError("the card-signing key must be an Ed25519 private key")
        return key

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS joserfc's ``serialize_compact`` makes (Ed25519 is deterministic:
        tests/unit/test_card_header.py compares the bytes), assembled here: joserfc's key
        and header checks for each card cost more than the signature."""
        payload = json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
        signing_input = self._protected + b"." + _b64(payload.encode())
        signature = self._private.sign(signing_input)
        return (signing_input + b"." + _b64(signature)).decode("ascii")


def fold(value: str, first_line_used: int = len(HEADER) + 2) -> str:
    """Fold a long card value for the header (readers strip whitespace)."""
    chunks = []
    width = _FOLD_WIDTH - first_line_used
    while value:
        chunks.append(value[:width])
        value = value[width:]
        width = _FOLD_WIDTH - 1
    # libmilter folds with a bare LF; the MTA writes its own line ends.
    return "\n\t".join(chunks)


class Verifier(Protocol):
    """What readers of cards need: :class:`CardVerifier`, or one that reloads its keys."""

    def verify(self, value: str) -> dict[str, Any]: ...


class CardVerifier:
    """Verifies card values against a set of public keys indexed by ``kid``.

    ``retire_after`` maps the kid of a rotated-out key to the unix time its grace period
    ends; after that its cards are refused as ``retired_key``.
    """

    def __init__(
        self, keys: Iterable[OKPKey], retire_after: Mapping[str, int] | None = None
    ) -> None:
        self._keys = {k.thumbprint() if k.kid is None else k.kid: k for k in keys}
        self._retire_after = dict(retire_after or {})

    @property
    def kids(self) -> Sequence[str]:
        return tuple(self._keys)

    def verify(self, value: str, now: float | None = None) -> dict[str, Any]:
        compact = _WHITESPACE.sub("", value)
        if compact.count(".") != 2:
            raise CardError("malformed_card", "card is not a JWS compact serialization")
        try:
            header_b64 = compact.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
        except (ValueError, UnicodeDecodeError) as e:
            raise CardError("malformed_card", "card header is not base64url JSON") from e
        if not isinstance(header, dict) or header.get("alg") != ALG:
            raise CardError("malformed_card", f"card algorithm must be {ALG}")
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise CardError("unknown_kid", "card is signed by an unknown key")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = jws.deserialize_compact(compact, key, algorithms=[ALG])
            claims = json.loads(obj.payload)
        except (JoseError, ValueError) as e:
            raise CardError("bad_signature", "card signature does not verify") from e
        # Only after the signature: "retired_key" then means genuinely ours, but too old.
        until = self._retire_after.get(str(header.get("kid")))
        if until is not None and (time.time() if now is None else now) >= until:
            day = datetime.datetime.fromtimestamp(until, datetime.UTC).date()
            raise CardError(
                "retired_key", f"card is signed by a retired key whose grace period ended {day}"
            )
        if not isinstance(claims, dict) or claims.get("v") != VERSION:
            raise CardError("malformed_card", "card payload is not a version 1 card")
        return claims
