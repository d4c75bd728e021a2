"""The card vault: envelope encryption of saved payment methods (PCI DSS v4 requirement 3).

Each record's secret (card number, holder name) is sealed with AES-256-GCM under its own
random 256-bit data key. The data key is wrapped, also with AES-256-GCM, by a versioned
key-encryption key (KEK) that lives only in the key file, never in the database: a
database dump alone decrypts nothing. Both layers authenticate associated data naming
the format, the purpose, the record id and the owner, so a ciphertext moved to another
row, another user, or from one layer to the other fails to open.

Rotation (3.6.1, 3.7.4): ``add_kek_version`` makes a new active version; ``Vault.rewrap``
then re-wraps every data key under it without decrypting card data. Old versions keep
opening records until ``retire_kek_version``. The order that loses nothing:

1. ``add_kek_version``; restart or reload every process that seals, so new records use
   the new version (records sealed meanwhile under the old one stay readable);
2. rewrap every record whose ``kek_version`` is not active;
3. once a pass finds none left, ``retire_kek_version`` the old one. Retiring keeps the
   key in the file (only flagged), so a record missed by mistake can still be recovered
   by an operator.

The fingerprint key does not rotate: changing it would make every stored fingerprint
miss, and duplicate detection with it.

Python cannot guarantee that key or plaintext bytes are wiped from memory: ``bytes`` are
immutable and json and cryptography make copies. So plaintext and data keys live only in
locals for the length of one call and are never kept on an object; the remaining
protection is the process boundary (no core dumps, no swap of the sidecar).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inboxpay import keyfile
from inboxpay.atomicfile import replace_file
from inboxpay.errors import ConfigError, InboxPayError
from inboxpay.paymentcard import normalize_number

FORMAT = "inboxpay-vault-1"
KEY_BYTES = 32  # AES-256 for KEKs and data keys; HMAC-SHA256 for fingerprints
NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + _TAG_BYTES
_SEAL_PURPOSE = "payment-method"
_WRAP_PURPOSE = "data-key"
_FINGERPRINT_PURPOSE = "fingerprint"
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
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


class VaultError(InboxPayError):
    """A record cannot be sealed, opened or rewrapped. Messages never carry key or
    plaintext material, so they are safe to log."""


@dataclass(frozen=True)
class Kek:
    key: bytes = field(repr=False)
    created: str
    retired: bool


@dataclass(frozen=True)
class Keyring:
    """The parsed key file. ``repr`` leaves the keys out, so logging one is harmless."""

    active: int
    keks: Mapping[int, Kek]
    fingerprint_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Sealed:
    """What the store keeps for one record; none of it is secret without the key file."""

    sealed: bytes  # nonce || AES-256-GCM(data key, secret JSON)
    wrapped_key: bytes  # nonce || AES-256-GCM(KEK[kek_version], data key)
    kek_version: int


# --- the key file ---


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _new_kek() -> dict[str, Any]:
    return {"key": _b64(secrets.token_bytes(KEY_BYTES)), "created": _now(), "retired": False}


def _dump(raw: Mapping[str, Any]) -> bytes:
    return json.dumps(raw, indent=2, sort_keys=True).encode("ascii") + b"\n"


def _decode_key(value: object, where: str, prefix: str) -> bytes:
    # Messages say where the bad key is, never what it holds.
    if isinstance(value, str):
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            pass
        else:
            if len(key) == KEY_BYTES:
                return key
    raise ConfigError(f"{prefix}: {where} must be base64 of {KEY_BYTES} bytes")


def _parse(raw: object, prefix: str) -> Keyring:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix}: must hold a JSON object")
    if raw.get("format") != FORMAT:
        raise ConfigError(f'{prefix}: "format" must be "{FORMAT}"')
    entries = raw.get("keks")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f'{prefix}: "keks" must be a non-empty object')
    keks: dict[int, Kek] = {}
    for name, entry in entries.items():
        if not _VERSION.fullmatch(name):
            raise ConfigError(f'{prefix}: "keks" names must be positive integers, not {name!r}')
        where = f'"keks"."{name}"'
        if not isinstance(entry, dict):
            raise ConfigError(f"{prefix}: {where} must be an object")
        key = _decode_key(entry.get("key"), f'{where}."key"', prefix)
        created = entry.get("created")
        if not isinstance(created, str):
            raise ConfigError(f'{prefix}: {where}."created" must be a string')
        retired = entry.get("retired")
        if not isinstance(retired, bool):
            raise ConfigError(f'{prefix}: {where}."retired" must be true or false')
        keks[int(name)] = Kek(key, created, retired)
    active = raw.get("active")
    if type(active) is not int or active not in keks:
        raise ConfigError(f'{prefix}: "active" must name a version in "keks"')
    if keks[active].retired:
        raise ConfigError(f'{prefix}: "active" version {active} is retired')
    fingerprint_key = _decode_key(raw.get("fingerprint_key"), '"fingerprint_key"', prefix)
    return Keyring(active, MappingProxyType(keks), fingerprint_key)


def _json_or_none(data: bytes) -> Any:
    """Parsed JSON, or None. The decode errors are dropped here, not chained: both
    UnicodeDecodeError and JSONDecodeError hold the whole input (keys, plaintext), and an
    error raised inside the except block would keep them as its ``__context__``."""
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        return None


def _read(path: Path, key_name: str) -> tuple[dict[str, Any], Keyring, os.stat_result]:
    """The raw JSON (to rewrite it without losing fields), the keyring, and the file's stat."""
    prefix = f"{key_name}: {path}"
    data, st = keyfile.read_with_stat(path, key_name, private=True)
    raw = _json_or_none(data)
    if raw is None:
        raise ConfigError(f"{prefix}: is not valid JSON")
    return raw, _parse(raw, prefix), st


def load_keyring(path: Path, key_name: str = "[vault] key_file") -> Keyring:
    """Read and check the key file; any problem is a ConfigError naming ``key_name``."""
    return _read(Path(path), key_name)[1]


def generate_keyring(path: Path, key_name: str = "[vault] key_file") -> Keyring:
    """Create a new key file (0600) with KEK version 1; never overwrites an existing one,
    because that would make every record sealed under it unreadable."""
    path = Path(path)
    raw = {
        "format": FORMAT,
        "active": 1,
        "keks": {"1": _new_kek()},
        "fingerprint_key": _b64(secrets.token_bytes(KEY_BYTES)),
    }
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        keyfile.create(path, _dump(raw))
    except FileExistsError:
        raise ConfigError(
            f"{key_name}: {path} already exists; not overwriting a key file"
        ) from None
    except OSError as e:
        raise ConfigError(f"{key_name}: cannot create {path}: {e.strerror}") from e
    return _parse(raw, f"{key_name}: {path}")


def _replace(path: Path, data: bytes, old: os.stat_result, key_name: str) -> None:
    """Atomically replace the key file, keeping owner and mode: old file or new, never half."""
    try:
        replace_file(path, data, like=old)
    except OSError as e:
        raise ConfigError(f"{key_name}: cannot replace {path}: {e.strerror}") from e


@contextlib.contextmanager
def _locked(path: Path, key_name: str) -> Iterator[None]:
    # Two rotations at once would each add "version N+1" with a different key, and the
    # records one of them rewrapped would be lost with the key the other overwrote.
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise ConfigError(f"{key_name}: cannot lock {path}: {e.strerror}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def add_kek_version(path: Path, key_name: str = "[vault] key_file") -> int:
    """Add a new KEK version, make it active, and return its number."""
    path = Path(path)
    with _locked(path, key_name):
        raw, ring, st = _read(path, key_name)
        # Past the highest ever used, retired included, so a number is never reused.
        version = max(ring.keks) + 1
        raw["keks"][str(version)] = _new_kek()
        raw["active"] = version
        _parse(raw, f"{key_name}: {path}")
        _replace(path, _dump(raw), st, key_name)
    return version


def retire_kek_version(path: Path, version: int, key_name: str = "[vault] key_file") -> None:
    """Stop using ``version`` for anything: records still wrapped under it stop opening.

    Only after a rewrap pass found no record left at this version. Idempotent.
    """
    path = Path(path)
    with _locked(path, key_name):
        raw, ring, st = _read(path, key_name)
        if version not in ring.keks:
            raise VaultError(f"KEK version {version} does not exist")
        if version == ring.active:
            raise VaultError(f"KEK version {version} is active; add a new version first")
        if ring.keks[version].retired:
            return
        raw["keks"][str(version)]["retired"] = True
        _replace(path, _dump(raw), st, key_name)


# --- sealing ---


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
    """Seals and opens payment-method secrets with the keys of a Keyring.

    Holds nothing but the keyring: no decrypted data or data key outlives a call.
    """

    def __init__(self, keyring: Keyring) -> None:
        kek = keyring.keks.get(keyring.active)
        if kek is None or kek.retired:
            raise VaultError("the keyring has no usable active KEK version")
        self._keyring = keyring

    @property
    def active_version(self) -> int:
        return self._keyring.active

    def _kek(self, version: int) -> AESGCM:
        # type() and not isinstance(): True would otherwise look up version 1.
        kek = self._keyring.keks.get(version) if type(version) is int else None
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
        version = self._keyring.active
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
        secret = _json_or_none(plaintext)
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
        active = self._keyring.active
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
        digest = hmac.new(self._keyring.fingerprint_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
