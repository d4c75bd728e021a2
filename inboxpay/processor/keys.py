"""Processor key files: the sandbox's P-256 private JWK, the public JWK the sidecar seals
to, and the API key both sides share. Every load error is a ConfigError naming the key."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from inboxpay import keyfile
from inboxpay.errors import ConfigError
from inboxpay.processor.seal import ALG, CURVE, key_id

API_KEY_BYTES = 32
_MIN_API_KEY_LENGTH = 16


def generate_processor_key(path: Path) -> ECKey:
    """Write a new P-256 private JWK (mode 0600, refusing to overwrite) with its thumbprint
    as ``kid``."""
    key = ECKey.generate_key(CURVE, private=True)
    jwk = {**key.as_dict(private=True), "kid": key.thumbprint()}
    keyfile.create(path, json.dumps(jwk, indent=2).encode("ascii") + b"\n")
    return ECKey.import_key(jwk)


def _read_jwk(path: Path, key_name: str) -> dict[str, Any]:
    raw = keyfile.read(path, key_name)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        # No chaining: the decode error would carry the file's text, a private key.
        raise ConfigError(f"{key_name}: {path} is not a JSON JWK") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{key_name}: {path} is not a JSON JWK")
    return data


def _import(jwk: Mapping[str, Any], key_name: str, where: str) -> ECKey:
    try:
        key = ECKey.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError):
        raise ConfigError(f"{key_name}: {where} is not a {CURVE} EC JWK") from None
    if key.curve_name != CURVE:
        raise ConfigError(f"{key_name}: {where} must be a {CURVE} key")
    return key


def load_processor_key(path: Path, key_name: str = "[sandbox] key_file") -> ECKey:
    """The processor's private key, from a JWK file written by :func:`generate_processor_key`."""
    key = _import(_read_jwk(path, key_name), key_name, str(path))
    if not key.is_private:
        raise ConfigError(f"{key_name}: {path} must hold a private key")
    return key


def public_jwk_of(path: Path, key_name: str = "[sandbox] key_file") -> dict[str, Any]:
    """The public JWK of the processor key in ``path``: what the sidecar is configured with."""
    key = load_processor_key(path, key_name)
    return {**key.as_dict(private=False), "kid": key_id(key), "use": "enc", "alg": ALG}


def load_public_jwk(jwk: Mapping[str, Any], key_name: str) -> ECKey:
    """A processor's public key for sealing. A private key here is refused: the sidecar
    must never hold what opens the cards it seals."""
    if "d" in jwk:
        raise ConfigError(f"{key_name}: holds a private key; give the public JWK only")
    if jwk.get("alg", ALG) != ALG or jwk.get("use", "enc") != "enc":
        raise ConfigError(f"{key_name}: the JWK is not for {ALG} encryption")
    return _import(jwk, key_name, "the JWK")


def load_public_jwk_file(path: Path, key_name: str) -> ECKey:
    return load_public_jwk(_read_jwk(path, key_name), key_name)


def generate_api_key(path: Path) -> str:
    """Write a new random API key (mode 0600, refusing to overwrite)."""
    api_key = secrets.token_urlsafe(API_KEY_BYTES)
    keyfile.create(path, api_key.encode("ascii") + b"\n")
    return api_key


def load_api_key(path: Path, key_name: str = "[sandbox] api_key_file") -> str:
    data = keyfile.read(path, key_name)
    try:
        api_key = data.decode("ascii").strip()
    except UnicodeDecodeError:
        # No chaining: the decode error holds the file's bytes, the secret itself.
        raise ConfigError(f"{key_name}: {path} must hold ASCII text") from None
    # Printable ASCII without spaces: it goes into an Authorization header.
    if len(api_key) < _MIN_API_KEY_LENGTH or not all(0x21 <= ord(c) < 0x7F for c in api_key):
        raise ConfigError(
            f"{key_name}: {path} must hold at least {_MIN_API_KEY_LENGTH} printable characters"
        )
    return api_key
