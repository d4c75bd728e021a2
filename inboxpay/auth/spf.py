"""SPF (RFC 7208) for the MAIL FROM and HELO identities, through pyspf.

pyspf resolves through the module-level ``spf.DNSLookup``.  It is replaced once,
here, by :func:`_dispatch`, which asks the resolver of the check running in the
current context, so concurrent milter threads never share DNS state.  This is
the one module that knows pyspf's answer tuples and exceptions.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import spf

from inboxpay import addresses
from inboxpay.dns import DNSError, Record, Resolver

log = logging.getLogger(__name__)

RESULTS = frozenset({"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"})

# Names pyspf used before RFC 7208.
_LEGACY = {"error": "temperror", "unknown": "permerror"}

_resolver: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar(
    "inboxpay_spf_resolver", default=None
)


@dataclass(frozen=True)
class SpfResult:
    result: str  # "pass" | "fail" | "softfail" | "neutral" | "none" | "temperror" | "permerror"
    domain: str  # the domain whose policy was checked (MAIL FROM domain, or the HELO name)
    identity: str  # "mailfrom" or "helo"
    explanation: str  # pyspf's explanation / reason text, may be ""


def check_mailfrom(
    ip: str, mail_from: str, helo: str, resolver: Resolver, timeout: float = 20.0
) -> SpfResult:
    """SPF for the MAIL FROM identity; a null sender is checked as ``postmaster@<helo>``."""
    sender = mail_from.strip().removeprefix("<").removesuffix(">").strip()
    if not sender:
        return replace(check_helo(ip, helo, resolver, timeout), identity="mailfrom")
    # pyspf splits at the first "@": "a@b"@example.com would check 'b"@example.com'.
    local, domain = addresses.split(sender)
    if not domain:
        local, domain = "", sender  # as pyspf reads a bare domain
    return _check(ip, sender, helo, resolver, timeout, domain, "mailfrom", local or "postmaster")


def check_helo(ip: str, helo: str, resolver: Resolver, timeout: float = 20.0) -> SpfResult:
    """SPF for the HELO identity; an address literal or a name that is no FQDN has none."""
    name = helo.strip()
    if not _is_fqdn(name):
        return SpfResult("none", name, "helo", "HELO is not a fully qualified domain name")
    return _check(ip, "", name, resolver, timeout, name, "helo")


def _is_fqdn(name: str) -> bool:
    # RFC 7208 4.3: a malformed or single-label domain gives "none" without lookups.
    if _is_address(name.removeprefix("[").removesuffix("]")):
        return False
    labels = name.removesuffix(".").split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    return all(0 < len(label) < 64 for label in labels)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.removeprefix("IPv6:"))
    except ValueError:
        return False
    return True


def _check(
    ip: str,
    sender: str,
    helo: str,
    resolver: Resolver,
    timeout: float,
    domain: str,
    identity: str,
    local: str = "",
) -> SpfResult:
    token = _resolver.set(resolver)
    try:
        result, explanation = _run_pyspf(ip, sender, helo, timeout, local, domain)
    finally:
        _resolver.reset(token)
    return SpfResult(result, domain, identity, explanation)


def _run_pyspf(
    ip: str, sender: str, helo: str, timeout: float, local: str, domain: str
) -> tuple[str, str]:
    try:
        query = spf.query(i=ip, s=sender, h=helo, querytime=timeout)
        if sender:
            query.l, query.o, query.d = local, domain, domain  # our split, not pyspf's
        result, _code, explanation = query.check()
    except spf.TempError as e:
        return "temperror", f"SPF Temporary Error: {e}"
    except spf.PermError as e:  # raised by the constructor for a bad client address
        return "permerror", f"SPF Permanent Error: {e}"
    except OSError as e:
        return "temperror", f"SPF Temporary Error: {e}"
    except Exception as e:
        # A pyspf bug on hostile input must not take the message down with it.
        log.exception("pyspf failed for ip=%s sender=%r helo=%r", ip, sender, helo)
        return "permerror", f"SPF Permanent Error: {e.__class__.__name__}: {e}"
    return _result_name(str(result)), str(explanation or "")


def _result_name(name: str) -> str:
    name = _LEGACY.get(name.lower(), name.lower())
    # "ambiguous" and anything else only come from modes we never enable.
    return name if name in RESULTS else "permerror"


def _dispatch(
    name: str, qtype: str, strict: object = True, timeout: object = None
) -> list[tuple[tuple[str, str], Any]]:
    """``spf.DNSLookup``: the current check's resolver, answered as pyspf's tuples."""
    resolver = _resolver.get()
    if resolver is None:
        raise spf.TempError("DNS: no resolver (pyspf called outside inboxpay.auth.spf)")
    try:
        records = resolver.lookup(name, qtype)
    except DNSError as e:
        raise spf.TempError(f"DNS {e}") from e
    return list(_answers(records))


def _answers(records: list[Record]) -> Iterator[tuple[tuple[str, str], Any]]:
    for r in records:
        if r.rdtype in ("TXT", "SPF") and not r.value:
            continue  # a TXT with no strings is illegal, and pyspf indexes [0]
        yield (r.name.rstrip(".").lower(), r.rdtype), _value(r)


def _value(r: Record) -> Any:
    if r.rdtype == "CNAME" and isinstance(r.value, str):
        return r.value.rstrip(".").lower()  # pyspf looks the target up in its cache verbatim
    if r.rdtype in ("TXT", "SPF"):
        return list(r.value)  # pyspf joins the strings of each record
    return r.value


spf.DNSLookup = _dispatch
