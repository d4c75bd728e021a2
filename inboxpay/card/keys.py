"""The card's key files: the Ed25519 card-signing key and the recipient-hash secret."""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from inboxpay import keyfile
from inboxpay.errors import ConfigError

RECIPIENT_KEY_BYTES = 32


def load_signing_key(path: Path, key_name: str = "[signing] key_file") -> OKPKey:
    pem = keyfile.read(path, key_name)
    try:
        key = OKPKey.import_key(pem)
    except (JoseError, ValueError, TypeError) as e:
        raise ConfigError(f"{key_name}: {path} is not an Ed25519 PKCS#8 PEM key") from e
    if key.curve_name != "Ed25519" or not key.is_private:
        raise ConfigError(f"{key_name}: {path} must hold an Ed25519 private key")
    return key


def kid_of(key: OKPKey) -> str:
    """The RFC 7638 thumbprint: stable, derived, and the same in any JOSE library."""
    return key.thumbprint()


def load_recipient_key(path: Path, key_name: str = "[signing] recipient_key_file") -> bytes:
    data = keyfile.read(path, key_name)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise ConfigError(f"{key_name}: cannot read {path}") from e
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ConfigError(f"{key_name}: {path} must hold base64 text") from e
    if len(key) < RECIPIENT_KEY_BYTES:
        raise ConfigError(f"{key_name}: {path} must hold at least {RECIPIENT_KEY_BYTES} bytes")
    return key


def public_jwk(key: OKPKey, kid: str) -> dict[str, Any]:
    jwk = dict(key.as_dict(private=False))
    jwk.update({"kid": kid, "use": "sig", "alg": "EdDSA"})
    return jwk


def generate_signing_key(path: Path) -> OKPKey:
    key = OKPKey.generate_key("Ed25519", private=True)
    keyfile.create(path, key.as_pem(private=True))
    return key


def generate_recipient_key(path: Path) -> None:
    keyfile.create(path, base64.b64encode(secrets.token_bytes(RECIPIENT_KEY_BYTES)) + b"\n")
