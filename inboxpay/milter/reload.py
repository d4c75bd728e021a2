"""Reload the milter's config and keys while it runs, so that ``inboxpay keys rotate-signing``,
``inboxpay partners add`` or a hand edit take effect without a restart or a lost message.

Not on a signal: libmilter's own thread takes SIGHUP, SIGTERM and SIGINT with sigwait,
and the main thread sits in libmilter's C loop, so a Python signal handler would run
late or never. A daemon thread instead looks every few seconds at the config file and
the key files it names (inode, size, modification time). When one changed it re-reads
them all and hands the new config to the runtime, which swaps settings and policy in
one assignment. A config or key that no longer loads is logged as an error and changes
nothing: mail keeps flowing under the last good settings, and the next change to the
files is tried again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from inboxpay import config as config_module
from inboxpay.atomicfile import Stamp, stamp
from inboxpay.config import Config
from inboxpay.errors import ConfigError

_log = logging.getLogger(__name__)


Stamps = tuple[tuple[Path, Stamp], ...]


def watched(config: Config) -> tuple[Path, ...]:
    signing = (config.signing.key_file, config.signing.recipient_key_file)
    partner_keys = tuple(k for p in config.partners for k in p.signed_request_keys)
    return (config.path, *signing, *partner_keys)


def stamps(config: Config, config_stamp: Stamp | None = None) -> Stamps:
    """The watched files' stamps now; ``config_stamp``, if given, for the config file.

    Take them *before* the files are read (the config file's before it was loaded),
    so that a change landing while they are read shows at the next check.
    """
    now = tuple((p, stamp(p)) for p in watched(config))
    if config_stamp is None:
        return now
    return ((config.path, config_stamp), *now[1:])


def restart_needed(old: Config, new: Config) -> list[str]:
    """Changed settings the running milter cannot take over (sockets, resolver, store)."""
    om, nm, od, nd = old.milter, new.milter, old.dns, new.dns
    pairs = {
        "[milter] socket": (om.socket, nm.socket),
        "[milter] timeout": (om.timeout, nm.timeout),
        "[milter] workers": (om.workers, nm.workers),
        "[milter] max_message_bytes": (om.max_message_bytes, nm.max_message_bytes),
        "[milter] org_refresh_seconds": (om.org_refresh_seconds, nm.org_refresh_seconds),
        "[milter] metrics_listen": (om.metrics_listen, nm.metrics_listen),
        "[dns] nameservers": (od.nameservers, nd.nameservers),
        "[dns] port": (od.port, nd.port),
        "[dns] timeout": (od.timeout, nd.timeout),
        "[dns] cache_size": (od.cache_size, nd.cache_size),
        "[[dns.static]]": (od.static, nd.static),
        "[storage] url": (old.storage_url, new.storage_url),
    }
    return [name for name, (a, b) in pairs.items() if a != b]


class Reloader(threading.Thread):
    """Every ``every`` seconds, :meth:`check`. ``current`` gives the config in force,
    ``apply`` puts a new one in force (raising ConfigError if its key files are bad),
    ``seen`` the stamps taken before the config in force was read."""

    def __init__(
        self,
        current: Callable[[], Config],
        apply: Callable[[Config], None],
        every: float,
        seen: Stamps | None = None,
    ) -> None:
        super().__init__(name="inboxpay-reload", daemon=True)
        self._current = current
        self._apply = apply
        self._every = every
        self._halt = threading.Event()
        self._initial = current()  # what the sockets, resolver and store were built from
        # ``seen``: stamps taken before the running settings were read (see stamps()).
        self._seen = seen if seen is not None else self._stamps()

    def _stamps(self) -> Stamps:
        return stamps(self._current())

    def check(self) -> bool:
        """Reload when a watched file changed since the last check; True if new settings
        are now in force."""
        # Stamps before reading: a change made while we read shows at the next check.
        seen = self._stamps()
        if seen == self._seen:
            return False
        self._seen = seen  # a bad file is not re-read (nor re-logged) until it changes again
        old = self._current()
        try:
            new = config_module.load(old.path)
            self._apply(new)
        except ConfigError as e:
            _log.error("configuration not reloaded; the running settings stay in force: %s", e)
            return False
        later = restart_needed(self._initial, new)
        if later:
            _log.warning("changed settings take effect at the next restart: %s", ", ".join(later))
        return True

    def run(self) -> None:
        while not self._halt.wait(self._every):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad reload
                _log.exception("configuration reload failed")

    def stop(self) -> None:
        self._halt.set()
