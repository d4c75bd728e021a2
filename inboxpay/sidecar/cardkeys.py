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

A retired file that no longer loads fails closed: only the current key verifies until it
loads again. Editing that file is how a leaked key is revoked, and a revocation that left
the file unreadable (wrong owner, a typo) must not keep the leaked key trusted. A current
key file that no longer loads keeps the current key in force, still without retired keys.
Either way the error is logged once, and the files are read again when they change
(chmod and chown included).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from inboxpay.atomicfile import Stamp, stamp
from inboxpay.card.header import CardVerifier
from inboxpay.card.keyring import SigningKeyring, load_signing_keys
from inboxpay.config import SigningConfig
from inboxpay.errors import ConfigError

_log = logging.getLogger(__name__)


class _Loaded:
    """One reading of the key files; swapped whole, so a request sees one or the other."""

    def __init__(self, ring: SigningKeyring) -> None:
        self.ring = ring
        self.verifier: CardVerifier = ring.verifier()


class CardKeys:
    """Verifies cards and serves the JWKS with the keys the files hold now."""

    def __init__(self, signing: SigningConfig) -> None:
        self._signing = signing
        # The demo inbox verifies from a worker thread while requests verify on the loop.
        self._lock = threading.Lock()
        self._seen = self._stamps()  # before reading: a change meanwhile shows next time
        self._loaded = _Loaded(load_signing_keys(signing))  # at start-up: a config error

    def _stamps(self) -> tuple[Stamp, Stamp]:
        return stamp(self._signing.key_file), stamp(self._signing.retired_keys_file)

    def refresh(self) -> bool:
        """Re-read the key files if they changed; True when new keys are in force."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        seen = self._stamps()
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            ring = load_signing_keys(self._signing)
        except ConfigError as e:
            ring = self._fail_closed(e)
        self._loaded = _Loaded(ring)
        _log.info(
            "card keys reloaded", extra={"kid": ring.kid, "retired": [r.kid for r in ring.retired]}
        )
        return True

    def _fail_closed(self, error: ConfigError) -> SigningKeyring:
        try:
            ring = load_signing_keys(self._signing, retired=False)
        except ConfigError:
            ring = dataclasses.replace(self._loaded.ring, retired=())
            _log.error("card keys not reloaded; current key kept, retired keys dropped: %s", error)
            return ring
        _log.error("retired card keys not loaded; only the current key verifies: %s", error)
        return ring

    def verify(self, value: str) -> dict[str, Any]:
        self.refresh()
        return self._loaded.verifier.verify(value)

    def jwks(self) -> dict[str, Any]:
        self.refresh()
        return self._loaded.ring.jwks()
