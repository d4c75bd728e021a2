"""Envelope encryption of saved payment methods: each record under its own data key,
wrapped by the active KEK of :class:`inboxpay.vault.keys.VaultKeys` (see
:mod:`inboxpay.vault`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inboxpay.vault import VaultError
from inboxpay.vault.keys import FORMAT, KEY_BYTES, VaultKeys, json_or_none
from inboxpay.vault.paymentcard import normalize_number

NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + _TAG_BYTES
_SEAL_PURPOSE = "payment-method"
_WRAP_PURPOSE = "data-key"
_FINGERPRINT_PURPOSE = "fingerprint"
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

# PCI DSS 3.3.1.2: the card verification code is never stored after authorization, not
# even encrypted. The vault refuses these field names so no caller can do it by accident.
_FORBIDDEN_FIELDS = frozenset(
    {
        "cvc",
        "cvc2",
        "cvv",
        "cvv2",
        "cid",
        "csc",
        "securitycode",
        "cardsecuritycode",
        "cardverificationcode",
        "cardverificationvalue",
    }
)


@dataclass(frozen=True)
class Sealed:
    """What the store keeps for one record; none of it is secret without the key file."""

    sealed: bytes  # nonce || AES-256-GCM(data key, secret JSON)
    wrapped_key: bytes  # nonce || AES-256-GCM(KEK[kek_version], data key)
    kek_version: int


def _encode(purpose: str, *fields: str) -> bytes:
    """Length-prefixed fields: unambiguous, so ("ab", "c") and ("a", "bc") differ."""
    out = bytearray()
    for value in (FORMAT, purpose, *fields):
        if not isinstance(value, str) or not value:
            raise VaultError("record id and owner must be non-empty strings")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise VaultError("record id and owner must be valid Unicode text") from None
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def _check_secret(secret: Mapping[str, str]) -> None:
    if not isinstance(secret, Mapping):
        raise VaultError("the secret must be a mapping of strings")
    for name, value in secret.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise VaultError("the secret must map strings to strings")
        if _NOT_ALNUM.sub("", name.lower()) in _FORBIDDEN_FIELDS:
            raise VaultError(f"{name!r}: a card security code must never be stored")


class Vault:
    """Seals and opens payment-method secrets with the keys of the key file.

    Holds nothing but those keys: no decrypted data or data key outlives a call.
    """

    def __init__(self, keys: VaultKeys) -> None:
        kek = keys.keks.get(keys.active)
        if kek is None or kek.retired:
            raise VaultError("the keyring has no usable active KEK version")
        self._keys = keys

    @property
    def active_version(self) -> int:
        return self._keys.active

    def _kek(self, version: int) -> AESGCM:
        # type() and not isinstance(): True would otherwise look up version 1.
        kek = self._keys.keks.get(version) if type(version) is int else None
        if kek is None:
            raise VaultError(f"unknown KEK version {version!r}")
        if kek.retired:
            raise VaultError(f"KEK version {version} is retired")
        return AESGCM(kek.key)

    def _wrap(self, data_key: bytes, record_id: str, owner: str, version: int) -> bytes:
        aad = _encode(_WRAP_PURPOSE, record_id, owner, str(version))
        kek = self._kek(version)
        # Random 96-bit nonces are safe for up to 2**32 wraps per KEK (NIST SP 800-38D).
        nonce = os.urandom(NONCE_BYTES)
        return nonce + kek.encrypt(nonce, data_key, aad)

    def _unwrap(self, wrapped_key: bytes, record_id: str, owner: str, version: int) -> bytes:
        aad = _encode(_WRAP_PURPOSE, record_id, owner, str(version))
        kek = self._kek(version)
        if not isinstance(wrapped_key, bytes) or len(wrapped_key) != _WRAPPED_BYTES:
            raise VaultError("the wrapped data key is malformed")
        try:
            return kek.decrypt(wrapped_key[:NONCE_BYTES], wrapped_key[NONCE_BYTES:], aad)
        except InvalidTag:
            raise VaultError(
                "the data key does not unwrap: wrong record, owner or key version, or altered"
            ) from None

    def seal(self, record_id: str, owner: str, secret: Mapping[str, str]) -> Sealed:
        """Encrypt ``secret`` under a fresh data key bound to (record_id, owner)."""
        _check_secret(secret)
        aad = _encode(_SEAL_PURPOSE, record_id, owner)
        plaintext = json.dumps(
            dict(secret), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        # One key per record: a data key encrypts once, so its nonce can never repeat,
        # and deleting the wrapped key shreds the record.
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)
        version = self._keys.active
        return Sealed(sealed, self._wrap(data_key, record_id, owner, version), version)

    def open(
        self, record_id: str, owner: str, sealed: bytes, wrapped_key: bytes, kek_version: int
    ) -> dict[str, str]:
        """Decrypt a record; VaultError if anything about it is wrong."""
        aad = _encode(_SEAL_PURPOSE, record_id, owner)
        data_key = self._unwrap(wrapped_key, record_id, owner, kek_version)
        if not isinstance(sealed, bytes) or len(sealed) < NONCE_BYTES + _TAG_BYTES:
            raise VaultError("the sealed data is malformed")
        try:
            plaintext = AESGCM(data_key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise VaultError(
                "the sealed data does not open: wrong record or owner, or altered"
            ) from None
        secret = json_or_none(plaintext)
        if not isinstance(secret, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in secret.items()
        ):
            raise VaultError("the sealed data is not a sealed secret")
        return secret

    def rewrap(
        self, record_id: str, owner: str, wrapped_key: bytes, kek_version: int
    ) -> tuple[bytes, int]:
        """(wrapped_key, version) under the active KEK; the sealed data is not touched.

        A key already at the active version is checked and returned unchanged, so a
        rotation pass can be rerun without rewriting every row.
        """
        data_key = self._unwrap(wrapped_key, record_id, owner, kek_version)
        active = self._keys.active
        if kek_version == active:
            return wrapped_key, kek_version
        return self._wrap(data_key, record_id, owner, active), active

    def fingerprint(self, owner: str, number: str) -> str:
        """HMAC-SHA256 of (lowercased owner, normalized number), base64url without padding.

        Keyed, because an unkeyed hash of a 16-digit number with a known prefix and a
        Luhn digit is brute-forced in minutes; scoped to the owner, so equal values
        never reveal that two users hold the same card.
        """
        message = _encode(_FINGERPRINT_PURPOSE, owner.strip().lower(), normalize_number(number))
        digest = hmac.new(self._keys.fingerprint_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
