"""Keep the milter's org switches in step with the store (``inboxpay org set``, the admin API).

The milter's callbacks are threads without an event loop, so a daemon thread
reads the store every ``org_refresh_seconds`` (at most 30) and hands the
merged settings to the runtime. If the store cannot be read, the last good
settings stay in force and the reason is logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from inboxpay.store.engine import SqliteTarget, open_store, parse_url
from inboxpay.store.model import StoreError

_log = logging.getLogger(__name__)


async def read_settings(url: str, base_dir: Path) -> dict[str, bool]:
    """The store's org settings; {} when an embedded store was never created."""
    target = parse_url(url, base_dir)
    if isinstance(target, SqliteTarget) and not target.path.exists():
        return {}  # the milter must not create the sidecar's database
    store = await open_store(url, base_dir)
    try:
        return {o.domain: o.pay_enabled for o in await store.list_orgs()}
    finally:
        await store.close()


class OrgSync(threading.Thread):
    def __init__(
        self,
        url: str,
        base_dir: Path,
        defaults: Mapping[str, bool],
        apply: Callable[[Mapping[str, bool]], None],
        every: float,
    ) -> None:
        super().__init__(name="inboxpay-orgsync", daemon=True)
        self._url, self._base = url, base_dir
        self._defaults = dict(defaults)
        self._apply = apply
        self._every = every
        self._halt = threading.Event()  # not _stop: that is a Thread method CPython calls

    def refresh(self) -> None:
        try:
            stored = asyncio.run(read_settings(self._url, self._base))
        except (StoreError, OSError, ValueError) as e:
            _log.warning("org settings not refreshed: %s", e)
            return
        self._apply(self._defaults | stored)

    def run(self) -> None:
        while not self._halt.wait(self._every):
            self.refresh()

    def stop(self) -> None:
        self._halt.set()
