"""The vault's key file (``[vault] key_file``): the versioned key-encryption keys (KEKs)
and the fingerprint key, never in the database, and their rotation.

The file is read with :func:`inboxpay.keyfile.read_with_stat` ``private=True``: mode 0600
when it is ours, a regular file; it is replaced atomically, keeping owner and mode.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from inboxpay import keyfile
from inboxpay.atomicfile import replace_file
from inboxpay.errors import ConfigError
from inboxpay.vault import VaultError

FORMAT = "inboxpay-vault-1"
KEY_BYTES = 32  # AES-256 for KEKs and data keys; HMAC-SHA256 for fingerprints
_VERSION = re.compile(r"[1-9][0-9]{0,8}")


@dataclass(frozen=True)
class Kek:
    key: bytes = field(repr=False)
    created: str
    retired: bool


@dataclass(frozen=True)
class VaultKeys:
    """The parsed key file. ``repr`` leaves the keys out, so logging one is harmless."""

    active: int
    keks: Mapping[int, Kek]
    fingerprint_key: bytes = field(repr=False)


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


def _parse(raw: object, prefix: str) -> VaultKeys:
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
    return VaultKeys(active, MappingProxyType(keks), fingerprint_key)


def json_or_none(data: bytes) -> Any:
    """Parsed JSON, or None. The decode errors are dropped here, not chained: both
    UnicodeDecodeError and JSONDecodeError hold the whole input (keys, plaintext), and an
    error raised inside the except block would keep them as its ``__context__``."""
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        return None


def _read(path: Path, key_name: str) -> tuple[dict[str, Any], VaultKeys, os.stat_result]:
    """The raw JSON (to rewrite it without losing fields), the keys, and the file's stat."""
    prefix = f"{key_name}: {path}"
    data, st = keyfile.read_with_stat(path, key_name, private=True)
    raw = json_or_none(data)
    if raw is None:
        raise ConfigError(f"{prefix}: is not valid JSON")
    return raw, _parse(raw, prefix), st


def load_vault_keys(path: Path, key_name: str = "[vault] key_file") -> VaultKeys:
    """Read and check the key file; any problem is a ConfigError naming ``key_name``."""
    return _read(Path(path), key_name)[1]


def generate_vault_keys(path: Path, key_name: str = "[vault] key_file") -> VaultKeys:
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
