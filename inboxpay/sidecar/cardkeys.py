"""The sidecar's card keys, re-read while it runs so a signing-key rotation needs no restart.

The milter and the sidecar notice a rotation independently, in either order: a card
signed by the new key may reach the sidecar first. So before each card is verified (and
each ``GET /v1/keys`` answered) the key file and the retired-keys file are looked at
(inode, size, modification time: two ``stat`` calls) and re-read when one changed.

A time-based limit ("at most every 10 s") would be cheaper by nothing and worse: a
``/v1/keys`` poll or a made-up kid just before a rotation would spend the allowance,
and cards of the new key would be refused until it came round again. Looking at the
files costs the same per request whether the kid is known or not, re-reads only when
something changed, and also puts into force at once a retired key an administrator
deleted from the file (a revocation).

A file that no longer loads is logged, and the keys in force stay until it changes again.
"""

from __future__ import annotations

import logging
from typing import Any

from inboxpay.atomicfile import Stamp, stamp
from inboxpay.card import CardVerifier
from inboxpay.config import SigningConfig
from inboxpay.errors import ConfigError
from inboxpay.signing_keys import Keyring, load_signing_keys

_log = logging.getLogger(__name__)


class _Loaded:
    """One reading of the key files; swapped whole, so a request sees one or the other."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self.verifier: CardVerifier = ring.verifier()


class CardKeys:
    """Verifies cards and serves the JWKS with the keys the files hold now."""

    def __init__(self, signing: SigningConfig) -> None:
        self._signing = signing
        self._seen = self._stamps()  # before reading: a change meanwhile shows next time
        self._loaded = _Loaded(load_signing_keys(signing))  # at start-up: a config error

    def _stamps(self) -> tuple[Stamp, Stamp]:
        return stamp(self._signing.key_file), stamp(self._signing.retired_keys_file)

    def refresh(self) -> bool:
        """Re-read the key files if they changed; True when new keys are in force."""
        seen = self._stamps()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            ring = load_signing_keys(self._signing)
        except ConfigError as e:
            _log.error("card keys not reloaded; the previous keys stay in force: %s", e)
            return False
        self._loaded = _Loaded(ring)
        _log.info(
            "card keys reloaded", extra={"kid": ring.kid, "retired": [r.kid for r in ring.retired]}
        )
        return True

    def verify(self, value: str) -> dict[str, Any]:
        self.refresh()
        return self._loaded.verifier.verify(value)

    def jwks(self) -> dict[str, Any]:
        self.refresh()
        return self._loaded.ring.jwks()
