"""The card-signing keyring: the current Ed25519 key and the keys rotated out of service.

``inboxpay keys rotate-signing`` moves the current key's public half into
``[signing] retired_keys_file`` and writes a new private key over ``[signing] key_file``.
The retired file is a JWKS of public keys only (the old private key is gone: verifying
needs only the public half), each entry carrying ``"retired_at"`` (unix seconds). Cards
signed by a retired key keep verifying for ``[signing] retired_key_grace_days`` after
that; later they are refused as ``retired_key`` until a rotation prunes the entry.

Rotation order, so that a crash at any point loses nothing: the retired file is
replaced first (the old key is then current *and* listed, which is harmless), then the
key file. Both are replaced atomically (:mod:`inboxpay.atomicfile`), so the milter and
the sidecar, which re-read them while running, never see a missing or half-written key.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from inboxpay import keyfile
from inboxpay.atomicfile import locked, replace_file
from inboxpay.card.header import CardVerifier
from inboxpay.card.keys import kid_of, load_signing_key, public_jwk
from inboxpay.errors import ConfigError

RETIRED_NAME = "[signing] retired_keys_file"
DAY = 86400
_PUBLIC_MEMBERS = ("kty", "crv", "x", "kid", "use", "alg")


class SigningFiles(Protocol):
    """The key files and settings this module reads: ``[signing]`` (``config.SigningConfig``)
    fits, and this module need not import the config layer above it."""

    @property
    def key_file(self) -> Path: ...
    @property
    def retired_keys_file(self) -> Path: ...
    @property
    def retired_key_grace_days(self) -> int: ...
    @property
    def kid(self) -> str | None: ...


@dataclass(frozen=True)
class RetiredKey:
    kid: str
    key: OKPKey  # public only
    retired_at: int  # unix seconds

    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.key, self.kid) | {"retired_at": self.retired_at}


@dataclass(frozen=True)
class SigningKeyring:
    """The current signing key and every retired key still listed in the retired file."""

    current: OKPKey  # the public half only: readers never need more
    kid: str
    retired: tuple[RetiredKey, ...]
    grace_seconds: int

    def _others(self) -> list[RetiredKey]:
        # After a crash mid-rotation the current key is also listed: it stays current.
        return [r for r in self.retired if r.kid != self.kid]

    def in_grace(self, now: float) -> list[RetiredKey]:
        return [r for r in self._others() if now < r.retired_at + self.grace_seconds]

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """What may verify cards today: the current key and the retired keys in grace."""
        at = time.time() if now is None else now
        return {"keys": [public_jwk(self.current, self.kid), *(r.jwk() for r in self.in_grace(at))]}

    def verifier(self) -> CardVerifier:
        # Keys past their grace stay in, so their cards get "retired_key", not "unknown_kid".
        others = self._others()
        ends = {r.kid: r.retired_at + self.grace_seconds for r in others}
        return CardVerifier([*(r.key for r in others), self.current], retire_after=ends)


def _entry(raw: object, where: str) -> RetiredKey:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    kid = raw.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ConfigError(f'{where}: needs a "kid" string')
    where = f"{where} (kid {kid!r})"
    if "d" in raw:
        # The file is copied to sidecars and is not as guarded as the key file.
        raise ConfigError(f"{where}: holds a private key; the file must hold public keys only")
    retired_at = raw.get("retired_at")
    if not isinstance(retired_at, int) or isinstance(retired_at, bool) or retired_at < 0:
        raise ConfigError(f'{where}: "retired_at" must be unix seconds (an integer)')
    try:
        key = OKPKey.import_key({k: raw[k] for k in _PUBLIC_MEMBERS if k in raw})
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{where}: not an Ed25519 public JWK ({e})") from None
    if key.curve_name != "Ed25519":
        raise ConfigError(f"{where}: not an Ed25519 public JWK (crv {key.curve_name})")
    return RetiredKey(kid, key, retired_at)


def parse_retired(data: bytes, where: str) -> tuple[RetiredKey, ...]:
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ConfigError(f"{where}: is not valid JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("keys"), list):
        raise ConfigError(f'{where}: expected a JWKS, {{"keys": [...]}}')
    entries = tuple(_entry(e, f"{where}: key #{i}") for i, e in enumerate(raw["keys"], 1))
    seen: set[str] = set()
    for e in entries:
        if e.kid in seen:
            raise ConfigError(f"{where}: kid {e.kid!r} is listed twice")
        seen.add(e.kid)
    return entries


def load_retired(path: Path) -> tuple[RetiredKey, ...]:
    """The retired keys; none when the file does not exist (no rotation yet)."""
    data = keyfile.read_if_exists(path, RETIRED_NAME)
    if data is None:
        return ()
    return parse_retired(data, f"{RETIRED_NAME}: {path}")


def dump_retired(entries: tuple[RetiredKey, ...]) -> bytes:
    return (json.dumps({"keys": [e.jwk() for e in entries]}, indent=2) + "\n").encode()


def load_signing_keys(signing: SigningFiles, retired: bool = True) -> SigningKeyring:
    """Read the key file and (unless ``retired`` is False) the retired file; any problem is
    a ConfigError naming the key."""
    key = load_signing_key(signing.key_file)
    kid = signing.kid or kid_of(key)
    return SigningKeyring(
        # The sidecar keeps this for months: drop the private half at once.
        current=OKPKey.import_key(public_jwk(key, kid)),
        kid=kid,
        retired=load_retired(signing.retired_keys_file) if retired else (),
        grace_seconds=signing.retired_key_grace_days * DAY,
    )


@dataclass(frozen=True)
class Rotation:
    old_kid: str
    new_kid: str
    verifiable_until: int  # when the old key's grace period ends
    pruned: tuple[str, ...]  # kids past their grace, dropped from the retired file
    kept: tuple[str, ...]  # kids still in grace, older than the old key


def rotate(signing: SigningFiles, now: int | None = None) -> Rotation:
    """Retire the current key (public half kept) and make a new one current.

    Raises ConfigError for a configuration that cannot rotate, OSError when a file
    cannot be written (the old key then stays current).
    """
    if signing.kid:
        raise ConfigError(
            f"[signing] kid: is fixed to {signing.kid!r}, and a fixed kid cannot follow a new "
            "key (two keys, one kid); remove the line to use derived kids, then rotate"
        )
    at = int(time.time()) if now is None else now
    # A symlinked key file: replace the key it points to, not the link (which would
    # leave the old private key behind at the target).
    key_file = signing.key_file.resolve()
    with locked(key_file.parent):  # two rotations at once would lose one new key
        old = load_signing_key(key_file)
        old_kid = kid_of(old)
        grace = signing.retired_key_grace_days * DAY
        listed = load_retired(signing.retired_keys_file)
        # An entry for the current key (a crash after the first write) is replaced.
        others = [r for r in listed if r.kid != old_kid]
        kept = tuple(r for r in others if at < r.retired_at + grace)
        pruned = tuple(r.kid for r in others if at >= r.retired_at + grace)
        public = OKPKey.import_key(public_jwk(old, old_kid))
        retired = (*kept, RetiredKey(old_kid, public, at))
        key_stat = os.stat(key_file)
        like = _stat_or(signing.retired_keys_file, key_stat)
        replace_file(signing.retired_keys_file, dump_retired(retired), like)
        new = OKPKey.generate_key("Ed25519", private=True)
        replace_file(key_file, new.as_pem(private=True), key_stat)
    return Rotation(old_kid, kid_of(new), at + grace, pruned, tuple(r.kid for r in kept))


def _stat_or(path: Path, fallback: os.stat_result) -> os.stat_result:
    # A new retired file takes the key file's owner and mode, so the services can read it
    # and tmpfiles' rule for the key directory applies to it as to the key.
    try:
        return os.stat(path)
    except FileNotFoundError:
        return fallback
