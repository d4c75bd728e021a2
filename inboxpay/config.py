"""The TOML configuration: one typed object, validated at start-up.

Every error names the key (``[dns] timeout``) so an administrator can fix it from
one line; unknown keys are errors too, because a misspelt key silently ignored is
a policy silently not applied. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from inboxpay.errors import ConfigError

T = TypeVar("T")

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SOCKET = re.compile(r"^(inet:\d{1,5}(@\S+)?|inet6:\d{1,5}(@\S+)?|unix:/\S+|local:/\S+|/\S+)$")


@dataclass(frozen=True)
class Partner:
    """A billing partner or a merchant sending directly: who may send payment requests."""

    id: str
    name: str
    sender_domains: tuple[str, ...]
    invoice_url_hosts: tuple[str, ...]


#: Used when the config has no ``[[partners]]``; ``inboxpay init`` writes them out.
DEFAULT_PARTNERS = (
    Partner("xero", "Xero", ("post.xero.com",), ("in.xero.com",)),
    Partner(
        "freshbooks",
        "FreshBooks",
        ("freshbooks.com",),
        ("my.freshbooks.com", "app.freshbooks.com"),
    ),
)


@dataclass(frozen=True)
class MilterConfig:
    socket: str = "inet:8894@127.0.0.1"
    authserv_id: str = "localhost"
    max_dkim_signatures: int = 5
    max_message_bytes: int = 25 * 1024 * 1024
    internal_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    timeout: int = 120
    card_ttl_days: int = 180


@dataclass(frozen=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ("127.0.0.1",)
    port: int = 53
    timeout: float = 5.0
    message_budget: float = 20.0
    cache_size: int = 10000


@dataclass(frozen=True)
class SigningConfig:
    key_file: Path
    recipient_key_file: Path
    kid: str | None = None


@dataclass(frozen=True)
class PolicyConfig:
    alignment: str = "relaxed"
    require_spf_pass: bool = True
    max_amount: Decimal = Decimal("1000000")


@dataclass(frozen=True)
class Config:
    path: Path
    milter: MilterConfig
    dns: DnsConfig
    signing: SigningConfig
    policy: PolicyConfig
    partners: tuple[Partner, ...]
    orgs: Mapping[str, bool] = field(default_factory=dict)


class _Section:
    """Reads one table, remembering which keys were used so leftovers can be reported."""

    def __init__(self, name: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{name}: expected a table")
        self.name = name
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        self.used.add(key)
        where = f"{self.name} {key}"
        if key not in self.data:
            if default is None:
                raise ConfigError(f"{where}: missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.get(key, list, list(default) if default is not None else None)
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.name} {key}: expected a list of strings")
        return tuple(value)

    def check(self, where: str, ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{self.name} {where}: {message}")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.name} {unknown[0]}: unknown key")


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
    root = _Section("config", data)
    base = path.parent
    config = Config(
        path=path,
        milter=_milter(_Section("[milter]", _table(root, "milter"))),
        dns=_dns(_Section("[dns]", _table(root, "dns"))),
        signing=_signing(_Section("[signing]", _table(root, "signing", required=True)), base),
        policy=_policy(_Section("[policy]", _table(root, "policy"))),
        partners=_partners(root),
        orgs=_orgs(root),
    )
    root.finish()
    return config


def _table(root: _Section, key: str, required: bool = False) -> dict[str, Any]:
    root.used.add(key)
    if key not in root.data:
        if required:
            raise ConfigError(f"[{key}]: missing section")
        return {}
    value = root.data[key]
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}]: expected a table")
    return value


def _milter(s: _Section) -> MilterConfig:
    d = MilterConfig()
    socket = s.get("socket", str, d.socket)
    s.check("socket", bool(_SOCKET.match(socket)), f"not a libmilter socket spec: {socket!r}")
    authserv_id = s.get("authserv_id", str, d.authserv_id).lower().rstrip(".")
    s.check("authserv_id", bool(_DOMAIN.match(authserv_id)), "expected a host name")
    networks = []
    for net in s.strings("internal_networks", ()):
        try:
            networks.append(ipaddress.ip_network(net, strict=False))
        except ValueError:
            raise ConfigError(f"{s.name} internal_networks: not a network: {net!r}") from None
    config = MilterConfig(
        socket=socket,
        authserv_id=authserv_id,
        max_dkim_signatures=s.get("max_dkim_signatures", int, d.max_dkim_signatures),
        max_message_bytes=s.get("max_message_bytes", int, d.max_message_bytes),
        internal_networks=tuple(networks),
        timeout=s.get("timeout", int, d.timeout),
        card_ttl_days=s.get("card_ttl_days", int, d.card_ttl_days),
    )
    s.check("max_dkim_signatures", 1 <= config.max_dkim_signatures <= 50, "must be 1..50")
    s.check("max_message_bytes", config.max_message_bytes >= 65536, "must be at least 65536")
    s.check("timeout", 1 <= config.timeout <= 3600, "must be 1..3600 seconds")
    s.check("card_ttl_days", 1 <= config.card_ttl_days <= 3650, "must be 1..3650")
    s.finish()
    return config


def _dns(s: _Section) -> DnsConfig:
    d = DnsConfig()
    servers = s.strings("nameservers", d.nameservers)
    for ns in servers:
        try:
            ipaddress.ip_address(ns)
        except ValueError:
            raise ConfigError(f"{s.name} nameservers: not an IP address: {ns!r}") from None
    config = DnsConfig(
        nameservers=servers,
        port=s.get("port", int, d.port),
        timeout=s.get("timeout", float, d.timeout),
        message_budget=s.get("message_budget", float, d.message_budget),
        cache_size=s.get("cache_size", int, d.cache_size),
    )
    s.check("nameservers", len(servers) > 0, "needs at least one server")
    s.check("port", 1 <= config.port <= 65535, "must be 1..65535")
    s.check("timeout", 0 < config.timeout <= 60, "must be more than 0 and at most 60 seconds")
    s.check("message_budget", 0 < config.message_budget <= 120, "must be 0..120 seconds")
    s.check("cache_size", config.cache_size >= 0, "must not be negative")
    s.finish()
    return config


def _path(s: _Section, key: str, base: Path, default: str | None = None) -> Path:
    value = s.get(key, str, default)
    s.check(key, value != "", "empty path")
    p = Path(value)
    return p if p.is_absolute() else base / p


def _signing(s: _Section, base: Path) -> SigningConfig:
    kid = s.get("kid", str, "") or None
    config = SigningConfig(
        key_file=_path(s, "key_file", base),
        recipient_key_file=_path(s, "recipient_key_file", base),
        kid=kid,
    )
    s.finish()
    return config


def _policy(s: _Section) -> PolicyConfig:
    d = PolicyConfig()
    alignment = s.get("alignment", str, d.alignment)
    s.check("alignment", alignment in ("relaxed", "strict"), "must be 'relaxed' or 'strict'")
    raw_max = s.get("max_amount", str, str(d.max_amount))
    try:
        max_amount = Decimal(raw_max)
    except InvalidOperation:
        raise ConfigError(f"{s.name} max_amount: not a decimal number: {raw_max!r}") from None
    s.check("max_amount", max_amount.is_finite() and max_amount > 0, "must be positive")
    config = PolicyConfig(
        alignment=alignment,
        require_spf_pass=s.get("require_spf_pass", bool, d.require_spf_pass),
        max_amount=max_amount,
    )
    s.finish()
    return config


def _domains(s: _Section, key: str) -> tuple[str, ...]:
    values = tuple(v.lower().rstrip(".") for v in s.strings(key))
    s.check(key, len(values) > 0, "needs at least one domain")
    for v in values:
        s.check(key, bool(_DOMAIN.match(v)), f"not a domain name: {v!r}")
    return values


def _partners(root: _Section) -> tuple[Partner, ...]:
    root.used.add("partners")
    entries = root.data.get("partners")
    if entries is None:
        return DEFAULT_PARTNERS
    if not isinstance(entries, list):
        raise ConfigError("[[partners]]: expected an array of tables")
    partners: list[Partner] = []
    for i, entry in enumerate(entries, 1):
        s = _Section(f"[[partners]] #{i}", entry)
        pid = s.get("id", str)
        s.check(
            "id",
            bool(_PARTNER_ID.match(pid)),
            f"expected lowercase letters, digits, - or _: {pid!r}",
        )
        s.check("id", pid not in {p.id for p in partners}, f"duplicate partner id {pid!r}")
        partners.append(
            Partner(
                id=pid,
                name=s.get("name", str),
                sender_domains=_domains(s, "sender_domains"),
                invoice_url_hosts=_domains(s, "invoice_url_hosts"),
            )
        )
        s.finish()
    return tuple(partners)


def _orgs(root: _Section) -> dict[str, bool]:
    orgs: dict[str, bool] = {}
    for domain, entry in _table(root, "orgs").items():
        s = _Section(f"[orgs.{domain!r}]", entry)
        s.check("", bool(_DOMAIN.match(domain.lower())), "not a domain name")
        orgs[domain.lower().rstrip(".")] = s.get("pay_enabled", bool)
        s.finish()
    return orgs


def resolve_path(config: Config, value: str) -> Path:
    """A path from the command line or a nested value, relative to the config's folder."""
    p = Path(value)
    return p if p.is_absolute() else config.path.parent / p
