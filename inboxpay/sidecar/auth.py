"""Bearer tokens from webmail backends: JWTs signed per issuer with a pinned algorithm."""

from __future__ import annotations

import base64
import json
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, OKPKey

from inboxpay import addresses, keyfile
from inboxpay.config import Issuer
from inboxpay.errors import ConfigError
from inboxpay.sidecar.errors import Unauthorized

# No whitespace, control characters or lone surrogates: a subject is stored as an owner.
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f\ud800-\udfff]{1,64}@[^@\s\x00-\x1f\x7f\ud800-\udfff]{1,253}$"
)
_LEEWAY = 30

Key = OKPKey | OctKey


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user's email address (``addresses.signed_in``, the one rule for
    "the same person" that recipient hashes and the store's owners follow) and whether
    they administer."""

    sub: str
    admin: bool = False

    @property
    def domain(self) -> str:
        return self.sub.rpartition("@")[2]


def load_issuer_key(issuer: Issuer) -> Key:
    where = f"[[sidecar.issuers]] {issuer.iss} key_file"
    raw = keyfile.read(issuer.key_file, where)
    try:
        if issuer.alg == "HS256":
            secret = base64.b64decode(raw.strip(), validate=True)
            if len(secret) < 32:
                raise ConfigError(f"{where}: an HS256 secret needs at least 32 bytes")
            return OctKey.import_key(secret)
        key = OKPKey.import_key(raw)
    except (JoseError, ValueError, TypeError) as e:
        raise ConfigError(f"{where}: not a valid {issuer.alg} key") from e
    if key.curve_name != "Ed25519":
        raise ConfigError(f"{where}: EdDSA issuers need an Ed25519 key")
    return key


def _header(token: str) -> dict[str, Any]:
    try:
        part = token.split(".", 1)[0]
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("malformed bearer token", "invalid_token") from None
    if not isinstance(value, dict):
        raise Unauthorized("malformed bearer token", "invalid_token")
    return value


def _claims_unverified(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("malformed bearer token", "invalid_token")
    try:
        value = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("malformed bearer token", "invalid_token") from None
    if not isinstance(value, dict):
        raise Unauthorized("malformed bearer token", "invalid_token")
    return value


class TokenVerifier:
    def __init__(
        self,
        issuers: Iterable[tuple[Issuer, Key]],
        audience: str,
        max_lifetime: int,
        admin_subjects: Iterable[str] = (),
    ) -> None:
        self._issuers: Mapping[str, tuple[Issuer, Key]] = {i.iss: (i, k) for i, k in issuers}
        self._audience = audience
        self._max_lifetime = max_lifetime
        self._admins = frozenset(addresses.normalize(s) for s in admin_subjects)

    def verify(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("missing bearer token", "missing_token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("expected 'Authorization: Bearer <token>'", "missing_token")
        token = token.strip()
        iss = _claims_unverified(token).get("iss")
        found = self._issuers.get(iss) if isinstance(iss, str) else None
        if found is None:
            raise Unauthorized("token issuer is not configured", "invalid_token")
        issuer, key = found
        if _header(token).get("alg") != issuer.alg:
            raise Unauthorized("token algorithm is not the issuer's", "invalid_token")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # RFC 9864 deprecation note on "EdDSA"
                decoded = jwt.decode(token, key, algorithms=[issuer.alg])
            jwt.JWTClaimsRegistry(
                leeway=_LEEWAY,
                aud={"essential": True, "value": self._audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except JoseError:
            raise Unauthorized("token is invalid or expired", "invalid_token") from None
        claims = decoded.claims
        if int(claims["exp"]) - time.time() > self._max_lifetime + _LEEWAY:
            raise Unauthorized("token lifetime is longer than allowed", "invalid_token")
        try:
            sub = addresses.signed_in(str(claims["sub"]))
        except addresses.AddressError as e:
            raise Unauthorized(f"token subject is not accepted: {e}", "invalid_token") from None
        if not _EMAIL.match(sub):
            raise Unauthorized("token subject is not an email address", "invalid_token")
        return Principal(sub, admin=sub in self._admins)


def mint(issuer: Issuer, key: Key, audience: str, sub: str, lifetime: int) -> str:
    """A token as a webmail backend would sign it (development and tests)."""
    now = int(time.time())
    claims = {"iss": issuer.iss, "aud": audience, "sub": sub, "iat": now, "exp": now + lifetime}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode({"alg": issuer.alg, "typ": "JWT"}, claims, key, algorithms=[issuer.alg])
