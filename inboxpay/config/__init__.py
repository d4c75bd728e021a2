"""The TOML configuration: one typed object, validated at start-up.

Every error names the key (``[dns] timeout``) so an administrator can fix it from
one line, and one pass reports every error, not just the first; unknown keys are errors
too, because a misspelt key silently ignored is a policy silently not applied. Relative
paths resolve against the config file's folder.
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
from inboxpay.config.reader import Errors, Section, table
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
    "Examined",
    "Issuer",
    "LimitsConfig",
    "MilterConfig",
    "Partner",
    "PolicyConfig",
    "ProcessorConfig",
    "SandboxConfig",
    "SidecarConfig",
    "SigningConfig",
    "decode",
    "examine",
    "load",
    "parse",
    "read",
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
    """Read and validate a config file; raises :class:`ConfigError` listing every bad key."""
    p = Path(path).absolute()
    return parse(read(p), p)


def read(path: Path) -> dict[str, Any]:
    """The file's TOML tables, not yet validated; ConfigError if unreadable or not TOML."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from e
    return decode(raw, path)


def decode(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e


def parse(data: dict[str, Any], path: Path) -> Config:
    """Validate the tables of the config file at ``path``; one ConfigError lists every problem."""
    found = examine(data, path)
    found.errors.raise_if_any()
    assert found.config is not None  # no errors: every section was read
    return found.config


@dataclass(frozen=True)
class Examined:
    """One pass over a config: every problem, and what could be read despite them."""

    errors: Errors
    config: Config | None  # only when there is no error
    # Read on their own, so the key files they name can be checked in the same pass.
    signing: SigningConfig | None
    vault_key_file: Path | None


def examine(data: dict[str, Any], path: Path) -> Examined:
    errors = Errors()
    root = Section("config", data, errors)
    base = path.parent

    def section(key: str, required: bool = False) -> Section:
        return root.sub(f"[{key}]", table(root, key, required))

    # Each section on its own: one that cannot be read does not hide errors in the others.
    milter = errors.attempt("[milter]", None, lambda: mail.milter(section("milter")))
    dns = errors.attempt("[dns]", None, lambda: mail.dns(section("dns")))
    signing = errors.attempt(
        "[signing]", None, lambda: mail.signing(section("signing", required=True), base)
    )
    policy = errors.attempt("[policy]", None, lambda: mail.policy(section("policy")))
    partners: tuple[Partner, ...] = errors.attempt(
        "[[partners]]", (), lambda: mail.partners(root, base)
    )
    orgs: dict[str, bool] = errors.attempt("[orgs]", {}, lambda: mail.orgs(root))
    sidecar = errors.attempt("[sidecar]", None, lambda: service.sidecar(section("sidecar"), base))
    storage_url = errors.attempt("[storage]", "", lambda: service.storage(section("storage")))
    vault = errors.attempt("[vault]", None, lambda: service.vault(section("vault"), base))
    processors: dict[str, ProcessorConfig] = errors.attempt(
        "[processors]", {}, lambda: service.processors(root, base)
    )
    sandbox = errors.attempt("[sandbox]", None, lambda: service.sandbox(root, base))
    limits = errors.attempt("[limits]", None, lambda: service.limits(section("limits")))
    root.finish()
    for partner in partners:
        name = partner.processor
        if processors and name not in processors and not errors.involve(f"[processors.{name}]"):
            errors.add(f"[[partners]] {partner.id} processor", f"no [processors.{name}]")
    config = None
    if not errors.messages:
        # Without errors every attempt returned its section, not the fallback.
        assert milter is not None and dns is not None and signing is not None
        assert policy is not None and sidecar is not None and vault is not None
        assert limits is not None
        config = Config(
            path=path,
            milter=milter,
            dns=dns,
            signing=signing,
            policy=policy,
            partners=partners,
            orgs=orgs,
            sidecar=sidecar,
            storage_url=storage_url,
            vault_key_file=vault,
            processors=processors,
            sandbox=sandbox,
            limits=limits,
        )
    return Examined(errors, config, signing, vault)
