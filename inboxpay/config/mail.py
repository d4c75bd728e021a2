"""The mail side of the configuration: milter, DNS, signing keys, policy, partners, orgs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from inboxpay.config.reader import DOMAIN, Section, domains, path, table
from inboxpay.errors import ConfigError

_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SOCKET = re.compile(r"^(inet:\d{1,5}(@\S+)?|inet6:\d{1,5}(@\S+)?|unix:/\S+|local:/\S+|/\S+)$")


@dataclass(frozen=True)
class Partner:
    """A billing partner or a merchant sending directly: who may send payment requests."""

    id: str
    name: str
    sender_domains: tuple[str, ...]
    invoice_url_hosts: tuple[str, ...]
    processor: str = "sandbox"  # the [processors.NAME] that charges its invoices
    # JWKS or PEM files with the public keys that sign its SignedActionRequests (dynamic
    # senders); none: it cannot use dynamic senders (docs/markup.md).
    signed_request_keys: tuple[Path, ...] = ()


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
    cpu_deadline: float = 5.0  # CPU seconds one message may use before the fail-safe path
    internal_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    timeout: int = 120
    card_ttl_days: int = 180
    org_refresh_seconds: int = 30
    metrics_listen: tuple[str, int] | None = None  # (host, port) of /metrics; None: no port
    # "payment": authenticate (and write Authentication-Results) only mail that could earn a
    # card; "all": every message, for a site that has no other authentication milter.
    authentication_results: str = "payment"
    workers: int = 0  # milter processes; 0: one per CPU


@dataclass(frozen=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ("127.0.0.1",)
    port: int = 53
    timeout: float = 5.0
    message_budget: float = 20.0
    cache_size: int = 10000
    static: tuple[tuple[str, str, str], ...] = ()  # (name, type, value): answered locally


@dataclass(frozen=True)
class SigningConfig:
    key_file: Path
    recipient_key_file: Path
    retired_keys_file: Path  # public keys of rotated-out signing keys (card/keyring.py)
    retired_key_grace_days: int = 180
    kid: str | None = None


@dataclass(frozen=True)
class PolicyConfig:
    alignment: str = "relaxed"
    require_spf_pass: bool = True
    max_amount: Decimal = Decimal("1000000")
    signed_request_max_age: int = 5 * 86400  # seconds a SignedActionRequest's iat may be old


def _host_port(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port), None if it is not one."""
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not DOMAIN.match(host.lower()):
            return None
    return host, int(port)


def milter(s: Section) -> MilterConfig:
    d = MilterConfig()
    metrics_listen = s.get("metrics_listen", str, "")
    metrics_addr = _host_port(metrics_listen) if metrics_listen else None
    s.check(
        "metrics_listen",
        not metrics_listen or metrics_addr is not None,
        f'expected HOST:PORT, or "" for no metrics port, got {metrics_listen!r}',
    )
    socket = s.get("socket", str, d.socket)
    s.check("socket", bool(_SOCKET.match(socket)), f"not a libmilter socket spec: {socket!r}")
    authserv_id = s.get("authserv_id", str, d.authserv_id).lower().rstrip(".")
    s.check("authserv_id", bool(DOMAIN.match(authserv_id)), "expected a host name")
    networks = []
    for net in s.strings("internal_networks", ()):
        try:
            networks.append(ipaddress.ip_network(net, strict=False))
        except ValueError:
            s.check("internal_networks", False, f"not a network: {net!r}")
    config = MilterConfig(
        socket=socket,
        authserv_id=authserv_id,
        max_dkim_signatures=s.get("max_dkim_signatures", int, d.max_dkim_signatures),
        max_message_bytes=s.get("max_message_bytes", int, d.max_message_bytes),
        cpu_deadline=s.get("cpu_deadline", float, d.cpu_deadline),
        internal_networks=tuple(networks),
        timeout=s.get("timeout", int, d.timeout),
        card_ttl_days=s.get("card_ttl_days", int, d.card_ttl_days),
        org_refresh_seconds=s.get("org_refresh_seconds", int, d.org_refresh_seconds),
        metrics_listen=metrics_addr,
        authentication_results=s.get("authentication_results", str, d.authentication_results),
        workers=s.get("workers", int, d.workers),
    )
    s.check(
        "authentication_results",
        config.authentication_results in ("payment", "all"),
        'must be "payment" or "all"',
    )
    s.check("workers", 0 <= config.workers <= 64, "must be 0..64 (0: one per CPU)")
    s.check("max_dkim_signatures", 1 <= config.max_dkim_signatures <= 50, "must be 1..50")
    s.check("max_message_bytes", config.max_message_bytes >= 65536, "must be at least 65536")
    s.check("cpu_deadline", 0.01 <= config.cpu_deadline <= 60, "must be 0.01..60 seconds")
    s.check("timeout", 1 <= config.timeout <= 3600, "must be 1..3600 seconds")
    s.check("card_ttl_days", 1 <= config.card_ttl_days <= 3650, "must be 1..3650")
    s.check("org_refresh_seconds", 1 <= config.org_refresh_seconds <= 30, "must be 1..30")
    s.finish()
    return config


def dns(s: Section) -> DnsConfig:
    d = DnsConfig()
    servers = s.strings("nameservers", d.nameservers)
    for ns in servers:
        s.check("nameservers", _is_ip(ns), f"not an IP address: {ns!r}")
    config = DnsConfig(
        nameservers=servers,
        port=s.get("port", int, d.port),
        timeout=s.get("timeout", float, d.timeout),
        message_budget=s.get("message_budget", float, d.message_budget),
        cache_size=s.get("cache_size", int, d.cache_size),
        static=_static_records(s),
    )
    s.check("nameservers", len(servers) > 0, "needs at least one server")
    s.check("port", 1 <= config.port <= 65535, "must be 1..65535")
    s.check("timeout", 0 < config.timeout <= 60, "must be more than 0 and at most 60 seconds")
    s.check("message_budget", 0 < config.message_budget <= 120, "must be 0..120 seconds")
    s.check("cache_size", config.cache_size >= 0, "must not be negative")
    s.finish()
    return config


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


STATIC_TYPES = ("A", "AAAA", "MX", "PTR", "TXT", "CNAME")


def _static_records(s: Section) -> tuple[tuple[str, str, str], ...]:
    """``[[dns.static]]``: records answered without asking DNS (development, air-gapped tests)."""
    s.used.add("static")
    raw = s.data.get("static", [])
    if not isinstance(raw, list):
        s.error("static", "expected an array of tables")
        return ()
    records = []
    for i, entry in enumerate(raw, 1):
        with s.errors.guard(f"[[dns.static]] #{i}"):
            records.append(_static_record(s.sub(f"[[dns.static]] #{i}", entry)))
    return tuple(records)


def _static_record(r: Section) -> tuple[str, str, str]:
    name = r.get("name", str).lower().rstrip(".")
    kind = r.get("type", str).upper()
    r.check("name", bool(DOMAIN.match(name)), f"not a domain name: {name!r}")
    r.check("type", kind in STATIC_TYPES, f"must be one of {', '.join(STATIC_TYPES)}")
    value = r.get("value", str)
    r.check("value", _static_value_ok(kind, value), f"not a valid {kind} value: {value[:60]!r}")
    r.finish()
    return name, kind, value


def _static_value_ok(kind: str, value: str) -> bool:
    if kind in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return address.version == (4 if kind == "A" else 6)
    if kind == "MX":
        preference, _, exchange = value.partition(" ")
        return preference.isdigit() and bool(DOMAIN.match(exchange.lower().rstrip(".")))
    if kind in ("PTR", "CNAME"):
        return bool(DOMAIN.match(value.lower().rstrip(".")))
    return True


def signing(s: Section, base: Path) -> SigningConfig:
    kid = s.get("kid", str, "") or None
    key_file = path(s, "key_file", base)
    # Beside the key by default: the same protected directory, and one file per key name.
    beside = key_file.parent / f"{key_file.stem}-retired.json"
    grace = s.get("retired_key_grace_days", int, SigningConfig.retired_key_grace_days)
    s.check("retired_key_grace_days", 1 <= grace <= 3650, "must be 1..3650")
    config = SigningConfig(
        key_file=key_file,
        recipient_key_file=path(s, "recipient_key_file", base),
        retired_keys_file=path(s, "retired_keys_file", base, str(beside)),
        retired_key_grace_days=grace,
        kid=kid,
    )
    s.finish()
    return config


def policy(s: Section) -> PolicyConfig:
    d = PolicyConfig()
    alignment = s.get("alignment", str, d.alignment)
    s.check("alignment", alignment in ("relaxed", "strict"), "must be 'relaxed' or 'strict'")
    raw_max = s.get("max_amount", str, str(d.max_amount))
    try:
        max_amount = Decimal(raw_max)
    except InvalidOperation:
        s.error("max_amount", f"not a decimal number: {raw_max!r}")
        max_amount = d.max_amount  # a placeholder: the error is recorded
    s.check("max_amount", max_amount.is_finite() and max_amount > 0, "must be positive")
    max_age = s.get("signed_request_max_age", int, d.signed_request_max_age)
    s.check("signed_request_max_age", 60 <= max_age <= 30 * 86400, "must be 60..2592000 seconds")
    config = PolicyConfig(
        alignment=alignment,
        require_spf_pass=s.get("require_spf_pass", bool, d.require_spf_pass),
        max_amount=max_amount,
        signed_request_max_age=max_age,
    )
    s.finish()
    return config


def partners(root: Section, base: Path) -> tuple[Partner, ...]:
    root.used.add("partners")
    entries = root.data.get("partners")
    if entries is None:
        return DEFAULT_PARTNERS
    if not isinstance(entries, list):
        raise ConfigError("[[partners]]: expected an array of tables")
    partners: list[Partner] = []
    for i, entry in enumerate(entries, 1):
        # Entry by entry: one that cannot be read does not hide errors in the others.
        with root.errors.guard(f"[[partners]] #{i}"):
            partners.append(_partner(root.sub(f"[[partners]] #{i}", entry), partners, base))
    return tuple(partners)


def _partner(s: Section, earlier: list[Partner], base: Path) -> Partner:
    """One ``[[partners]]`` entry; ``earlier`` entries' ids are taken."""
    pid = s.get("id", str)
    s.check(
        "id",
        bool(_PARTNER_ID.match(pid)),
        f"expected lowercase letters, digits, - or _: {pid!r}",
    )
    s.check("id", pid not in {p.id for p in earlier}, f"duplicate partner id {pid!r}")
    entry = Partner(
        id=pid,
        name=s.get("name", str),
        sender_domains=domains(s, "sender_domains"),
        invoice_url_hosts=domains(s, "invoice_url_hosts"),
        processor=s.get("processor", str, "sandbox"),
        signed_request_keys=tuple(
            Path(k) if Path(k).is_absolute() else base / k
            for k in s.strings("signed_request_keys", ())
        ),
    )
    s.finish()
    return entry


def orgs(root: Section) -> dict[str, bool]:
    orgs: dict[str, bool] = {}
    for domain, entry in table(root, "orgs").items():
        with root.errors.guard(f"[orgs.{domain!r}]"):
            s = root.sub(f"[orgs.{domain!r}]", entry)
            s.check("", bool(DOMAIN.match(domain.lower())), "not a domain name")
            orgs[domain.lower().rstrip(".")] = s.get("pay_enabled", bool)
            s.finish()
    return orgs
