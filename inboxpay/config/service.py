"""The service side of the configuration: sidecar API, storage, vault, processors, limits."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from inboxpay.config.reader import Section, path, table

ALGORITHMS = ("EdDSA", "HS256")


@dataclass(frozen=True)
class Issuer:
    """A webmail backend that signs user tokens; its algorithm is pinned."""

    iss: str
    alg: str
    key_file: Path  # EdDSA: Ed25519 PEM (public, or private to mint dev tokens); HS256: secret


@dataclass(frozen=True)
class SidecarConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    audience: str = "inboxpay"
    issuers: tuple[Issuer, ...] = ()
    webmail_origins: tuple[str, ...] = ()
    admin_subjects: tuple[str, ...] = ()
    token_max_lifetime: int = 900
    max_body_bytes: int = 262144  # a JSON-escaped 8 KiB card fits; abuse does not
    reconcile_after: int = 60
    # Development only: /demo/ lists this Maildir and hands out tokens for demo_user.
    demo_maildir: Path | None = None
    demo_user: str = "you@localhost"


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ProcessorConfig:
    name: str
    url: str
    public_key_file: Path
    api_key_file: Path
    timeout: float = 10.0


@dataclass(frozen=True)
class SandboxConfig:
    host: str
    port: int
    key_file: Path
    api_key_file: Path
    ledger: Path
    public_url: str


@dataclass(frozen=True)
class LimitsConfig:
    payment_attempts_per_hour: int = 20
    cvc_failures_before_lock: int = 3
    cvc_lock_minutes: int = 30
    payment_methods_per_day: int = 10


def listen(s: Section, default: str) -> tuple[str, int]:
    value = s.get("listen", str, default)
    host, sep, port = value.rpartition(":")
    ok = s.check(
        "listen",
        bool(sep and host and port.isascii() and port.isdigit()),
        f"expected HOST:PORT, got {value!r}",
    )
    if not (ok and s.check("listen", 0 < int(port) < 65536, "port must be 1..65535")):
        host, _, port = default.rpartition(":")  # a placeholder: the error is recorded
    return host.strip("[]"), int(port)


def _url(s: Section, key: str, default: str | None = None) -> str:
    value = s.get(key, str, default)
    parts = urlsplit(value)
    s.check(key, parts.scheme in ("http", "https") and bool(parts.netloc), f"not a URL: {value!r}")
    return value.rstrip("/")


def _issuers(s: Section, base: Path) -> tuple[Issuer, ...]:
    s.used.add("issuers")
    raw = s.data.get("issuers", [])
    if not isinstance(raw, list):
        s.error("issuers", "expected an array of tables")
        return ()
    issuers = []
    for i, entry in enumerate(raw, 1):
        with s.errors.guard(f"[[sidecar.issuers]] #{i}"):
            e = s.sub(f"[[sidecar.issuers]] #{i}", entry)
            alg = e.get("alg", str)
            e.check("alg", alg in ALGORITHMS, f"must be one of {', '.join(ALGORITHMS)}")
            issuers.append(Issuer(e.get("iss", str), alg, path(e, "key_file", base)))
            e.finish()
    return tuple(issuers)


def sidecar(s: Section, base: Path) -> SidecarConfig:
    d = SidecarConfig()
    host, port = listen(s, f"{d.host}:{d.port}")
    origins = s.strings("webmail_origins", ())
    for origin in origins:
        parts = urlsplit(origin)
        ok = parts.scheme in ("http", "https") and bool(parts.netloc) and parts.path in ("", "/")
        s.check("webmail_origins", ok, f"not an origin (scheme://host[:port]): {origin!r}")
    config = SidecarConfig(
        host=host,
        port=port,
        audience=s.get("audience", str, d.audience),
        issuers=_issuers(s, base),
        webmail_origins=tuple(o.rstrip("/") for o in origins),
        admin_subjects=tuple(a.lower() for a in s.strings("admin_subjects", ())),
        token_max_lifetime=s.get("token_max_lifetime", int, d.token_max_lifetime),
        max_body_bytes=s.get("max_body_bytes", int, d.max_body_bytes),
        reconcile_after=s.get("reconcile_after", int, d.reconcile_after),
        demo_maildir=path(s, "demo_maildir", base) if "demo_maildir" in s.data else None,
        demo_user=s.get("demo_user", str, d.demo_user).strip().lower(),
    )
    s.check("token_max_lifetime", 30 <= config.token_max_lifetime <= 86400, "must be 30..86400")
    s.check("max_body_bytes", 1024 <= config.max_body_bytes <= 1048576, "must be 1024..1048576")
    s.check("reconcile_after", 5 <= config.reconcile_after <= 86400, "must be 5..86400")
    s.check("demo_user", bool(_EMAIL.fullmatch(config.demo_user)), "not an email address")
    # The demo hands a token to whoever asks: never let it listen beyond this machine.
    s.check(
        "demo_maildir",
        config.demo_maildir is None or _loopback(host),
        "the development demo needs a loopback [sidecar] listen address",
    )
    s.finish()
    return config


def storage(s: Section) -> str:
    url = s.get("url", str, "sqlite:///inboxpay.db")
    scheme = url.partition("://")[0]
    s.check("url", scheme in ("sqlite", "postgresql", "postgres"), f"unsupported scheme {scheme!r}")
    s.finish()
    return url


def vault(s: Section, base: Path) -> Path:
    key_file = path(s, "key_file", base, "keys/vault.json")
    s.finish()
    return key_file


def processors(root: Section, base: Path) -> dict[str, ProcessorConfig]:
    out = {}
    for name, entry in table(root, "processors").items():
        with root.errors.guard(f"[processors.{name}]"):
            s = root.sub(f"[processors.{name}]", entry)
            out[name] = ProcessorConfig(
                name=name,
                url=_url(s, "url"),
                public_key_file=path(s, "public_key_file", base),
                api_key_file=path(s, "api_key_file", base),
                timeout=s.get("timeout", float, 10.0),
            )
            s.check("timeout", 0 < out[name].timeout <= 120, "must be more than 0 and at most 120")
            s.finish()
    return out


def sandbox(root: Section, base: Path) -> SandboxConfig | None:
    data = table(root, "sandbox")
    if not data:
        return None
    s = root.sub("[sandbox]", data)
    host, port = listen(s, "127.0.0.1:8090")
    config = SandboxConfig(
        host=host,
        port=port,
        key_file=path(s, "key_file", base, "keys/processor-sandbox.jwk"),
        api_key_file=path(s, "api_key_file", base, "keys/processor-api.key"),
        ledger=path(s, "ledger", base, "sandbox-ledger.db"),
        public_url=_url(s, "public_url", f"http://{host}:{port}"),
    )
    s.finish()
    return config


def limits(s: Section) -> LimitsConfig:
    values = {}
    for f in dataclasses.fields(LimitsConfig):
        values[f.name] = s.get(f.name, int, f.default)
        s.check(f.name, 1 <= values[f.name] <= 100000, "must be 1..100000")
    s.finish()
    return LimitsConfig(**values)
