"""The sidecar's organization directory: the config's ``[orgs]`` overlaid with the store's.

The switch itself, on a mapping of settings, is ``inboxpay.orgs.pay_enabled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from inboxpay.orgs import pay_enabled
from inboxpay.store.api import Store

REFRESH_SECONDS = 30.0


class OrgDirectory:
    """Config defaults overlaid with the store's settings, re-read at most every 30 s."""

    def __init__(
        self, store: Store, defaults: Mapping[str, bool], ttl: float = REFRESH_SECONDS
    ) -> None:
        self._store = store
        self._defaults = dict(defaults)
        self._ttl = ttl
        self._settings: dict[str, bool] = dict(defaults)
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def settings(self) -> Mapping[str, bool]:
        if time.monotonic() - self._loaded_at >= self._ttl:
            async with self._lock:
                if time.monotonic() - self._loaded_at >= self._ttl:
                    stored = {o.domain: o.pay_enabled for o in await self._store.list_orgs()}
                    self._settings = self._defaults | stored
                    self._loaded_at = time.monotonic()
        return self._settings

    def invalidate(self) -> None:
        """After a change made by this process, so it applies at once here."""
        self._loaded_at = float("-inf")

    async def pay_enabled(self, address_or_domain: str) -> bool:
        return pay_enabled(await self.settings(), address_or_domain)
