"""The sandbox processor's settings, and how the config's ``[sandbox]`` table maps to them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from inboxpay.errors import ConfigError
from inboxpay.processor.keys import load_api_key
from inboxpay.processor.protocol import is_http_url

_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})")


@dataclass(frozen=True)
class SandboxSettings:
    listen: str  # "127.0.0.1:8790" or "[::1]:8790"
    private_key_file: Path
    api_key: str = field(repr=False)
    ledger_path: Path
    public_base_url: str  # how browsers reach this process: challenge URLs start with it
    delay: float = 0.0  # seconds each charge answer waits after the charge is written


class SandboxSection(Protocol):
    """What :func:`settings_from_config` reads: the config's ``[sandbox]`` table."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def key_file(self) -> Path: ...
    @property
    def api_key_file(self) -> Path: ...
    @property
    def ledger(self) -> Path: ...
    @property
    def public_url(self) -> str: ...


def settings_from_config(section: SandboxSection, delay: float = 0.0) -> SandboxSettings:
    """Settings from the ``[sandbox]`` table; reads the API key file (ConfigError naming it)."""
    host = f"[{section.host}]" if ":" in section.host else section.host
    return SandboxSettings(
        listen=f"{host}:{section.port}",
        private_key_file=section.key_file,
        api_key=load_api_key(section.api_key_file, "[sandbox] api_key_file"),
        ledger_path=section.ledger,
        public_base_url=section.public_url,
        delay=delay,
    )


def parse_listen(listen: str, key_name: str = "[sandbox] listen") -> tuple[str, int]:
    m = _LISTEN.fullmatch(listen)
    if m is None or not 1 <= int(m["port"]) <= 65535:
        raise ConfigError(f"{key_name}: expected host:port or [v6]:port, got {listen!r}")
    return m["v6"] or m["host"], int(m["port"])


def validate(settings: SandboxSettings) -> None:
    """ConfigError naming the ``[sandbox]`` key of the first bad setting."""
    if not is_http_url(settings.public_base_url):
        raise ConfigError("[sandbox] public_url: expected an absolute http or https URL")
    if len(settings.api_key) < 16:
        raise ConfigError("[sandbox] api_key_file: the API key must have at least 16 characters")
    if not 0 <= settings.delay <= 600:
        raise ConfigError("[sandbox] delay: must be 0..600 seconds")
    parse_listen(settings.listen)
