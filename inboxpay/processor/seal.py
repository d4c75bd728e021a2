"""Sealing card data for the processor: JWE (RFC 7516), ECDH-ES+A256KW with A256GCM on P-256.

The sidecar seals with the processor's public key; only the processor's private key opens.

Python cannot wipe memory: ``str`` and ``bytes`` are immutable, and the allocator and
the libraries may hold copies. What we can do is keep the plaintext's lifetime short: it
exists only inside these functions, is never stored on an object, logged or cached, and
every reference is dropped as soon as the JWE exists, so the memory is freed at once.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from inboxpay.processor.errors import MalformedMessage, SealError
from inboxpay.processor.protocol import CardSecret

ALG = "ECDH-ES+A256KW"
ENC = "A256GCM"
CURVE = "P-256"
_ALGORITHMS = (ALG, ENC)
# The only protected header members a payment method may carry; "epk" is the ECDH-ES
# ephemeral key. No "zip": a compressed plaintext would let a sender make us inflate a bomb.
_HEADER_MEMBERS = {"alg", "enc", "kid", "epk"}


def key_id(key: ECKey) -> str:
    """The key's own ``kid`` or, when it has none, its RFC 7638 thumbprint."""
    return key.kid or key.thumbprint()


def seal_card(card: CardSecret, public_key: ECKey) -> str:
    """The card as a compact JWE that only the holder of ``public_key``'s private half reads."""
    if public_key.curve_name != CURVE:
        raise SealError(f"the processor key must be a {CURVE} key")
    header = {"alg": ALG, "enc": ENC, "kid": key_id(public_key)}
    plaintext = json.dumps(card.to_plaintext(), separators=(",", ":")).encode("utf-8")
    try:
        return jwe.encrypt_compact(header, plaintext, public_key, algorithms=_ALGORITHMS)
    except (JoseError, ValueError, TypeError) as e:
        raise SealError("the card could not be sealed to the processor key") from e
    finally:
        # Drop the only reference now rather than when the frame dies (see module docstring).
        del plaintext


def _protected_header(token: str) -> dict[str, Any]:
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise SealError("payment_method: the protected header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise SealError("payment_method: the protected header is not a JSON object")
    return header


def open_card(token: str, private_key: ECKey) -> CardSecret:
    """Decrypt a payment method sealed to ``private_key``.

    Raises SealError when it was not sealed to this key, breaks the header rules or does
    not hold a card; the message names at most a field, and no exception holds the
    plaintext.
    """
    header = _protected_header(token)
    if set(header) - _HEADER_MEMBERS or header.get("alg") != ALG or header.get("enc") != ENC:
        raise SealError(f"payment_method: the header must be alg {ALG}, enc {ENC}, kid, epk")
    if header.get("kid") != key_id(private_key):
        raise SealError("payment_method: sealed to another key")
    try:
        plaintext = jwe.decrypt_compact(token, private_key, algorithms=_ALGORITHMS).plaintext
    except (JoseError, ValueError, TypeError) as e:
        raise SealError("payment_method: does not decrypt with the processor key") from e
    if plaintext is None:
        raise SealError("payment_method: no plaintext")
    try:
        data = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError):
        # "from None": a JSONDecodeError keeps the whole document (the card) in ``.doc``.
        raise SealError("payment_method: the plaintext is not JSON") from None
    finally:
        del plaintext
    try:
        return CardSecret.from_plaintext(data)
    except MalformedMessage as e:
        # One error class for "cannot use this payment method"; the message names the field.
        raise SealError(str(e)) from None
    finally:
        del data
