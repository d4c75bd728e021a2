"""Partners' public keys for signed action requests (``[[partners]] signed_request_keys``).

:mod:`inboxpay.invoice.signed` verifies a request with them; the milter reads them at
start-up and on reload, and ``inboxpay config check`` checks them.
"""

from __future__ import annotations

import json
from pathlib import Path

from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from inboxpay import keyfile
from inboxpay.errors import ConfigError

MIN_RSA_BITS = 2048


def load_request_keys(path: Path, key_name: str) -> tuple[RSAKey, ...]:
    """The RSA public keys in a JWKS file or a PEM file (a partner's signed_request_keys)."""
    data = keyfile.read(path, key_name)
    try:
        if data.lstrip().startswith(b"{"):
            keys = list(KeySet.import_key_set(json.loads(data)).keys)
        else:
            keys = [RSAKey.import_key(data)]
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{key_name}: {path} is not a JWKS or PEM public key") from e
    rsa = [k for k in keys if isinstance(k, RSAKey)]
    if not rsa or len(rsa) != len(keys):
        raise ConfigError(f"{key_name}: {path} must hold RSA public keys only (RS256)")
    if any(k.is_private for k in rsa):
        raise ConfigError(f"{key_name}: {path} holds a private key; give the public key only")
    if any(k.raw_value.key_size < MIN_RSA_BITS for k in rsa):
        raise ConfigError(f"{key_name}: {path}: RSA keys must have at least {MIN_RSA_BITS} bits")
    return tuple(rsa)
