"""The TOML configuration: one typed object, validated at start-up.

Every error names the key (``[dns] timeout``) so an administrator can fix it from
one line; unknown keys are errors too, because a misspelt key silently ignored is
a policy silently not applied. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxpay.config import mail, service
from inboxpay.config.mail import (
    DEFAULT_PARTNERS,
    DnsConfig,
    MilterConfig,
    Partner,
    PolicyConfig,
    SigningConfig,
)
from inboxpay.config.reader import Section, table
from inboxpay.config.service import (
    Issuer,
    LimitsConfig,
    ProcessorConfig,
    SandboxConfig,
    SidecarConfig,
)
from inboxpay.errors import ConfigError

__all__ = [
    "DEFAULT_PARTNERS",
    "Config",
    "ConfigError",
    "DnsConfig",
    "Issuer",
    "LimitsConfig",
    "MilterConfig",
    "Partner",
    "PolicyConfig",
    "ProcessorConfig",
    "SandboxConfig",
    "SidecarConfig",
    "SigningConfig",
    "load",
    "parse",
]


@dataclass(frozen=True)
class Config:
    path: Path
    milter: MilterConfig
    dns: DnsConfig
    signing: SigningConfig
    policy: PolicyConfig
    partners: tuple[Partner, ...]
    orgs: Mapping[str, bool] = field(default_factory=dict)
    sidecar: SidecarConfig = field(default_factory=SidecarConfig)
    storage_url: str = "sqlite:///inboxpay.db"
    vault_key_file: Path = Path("keys/vault.json")
    processors: Mapping[str, ProcessorConfig] = field(default_factory=dict)
    sandbox: SandboxConfig | None = None
    limits: LimitsConfig = field(default_factory=LimitsConfig)


def load(path: str | Path) -> Config:
    """Read and validate a config file; raises :class:`ConfigError` naming the key."""
    p = Path(path).absolute()
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e.strerror}") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: {e}") from e
    return parse(data, p)


def parse(data: dict[str, Any], path: Path) -> Config:
    root = Section("config", data)
    base = path.parent
    config = Config(
        path=path,
        milter=mail.milter(Section("[milter]", table(root, "milter"))),
        dns=mail.dns(Section("[dns]", table(root, "dns"))),
        signing=mail.signing(Section("[signing]", table(root, "signing", required=True)), base),
        policy=mail.policy(Section("[policy]", table(root, "policy"))),
        partners=mail.partners(root),
        orgs=mail.orgs(root),
        sidecar=service.sidecar(Section("[sidecar]", table(root, "sidecar")), base),
        storage_url=service.storage(Section("[storage]", table(root, "storage"))),
        vault_key_file=service.vault(Section("[vault]", table(root, "vault")), base),
        processors=service.processors(root, base),
        sandbox=service.sandbox(root, base),
        limits=service.limits(Section("[limits]", table(root, "limits"))),
    )
    root.finish()
    for partner in config.partners:
        if config.processors and partner.processor not in config.processors:
            raise ConfigError(
                f"[[partners]] {partner.id} processor: no [processors.{partner.processor}]"
            )
    return config
