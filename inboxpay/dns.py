"""DNS for the milter: dnspython with configured servers, a TTL cache and a per-message budget.

SPF, DKIM and DMARC all resolve through the :class:`Resolver` protocol, so unit
tests inject a dictionary and production uses :class:`CachingResolver`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from inboxpay.errors import InboxPayError

#: Record types the authentication checks ask for.
RDTYPES = ("A", "AAAA", "MX", "PTR", "TXT", "CNAME")

# How long an empty answer (NXDOMAIN, NODATA) is cached when the zone gives no SOA.
_NEGATIVE_TTL = 60


class DNSError(InboxPayError):
    """A lookup could not be answered (timeout, SERVFAIL, budget spent): a temporary error."""


@dataclass(frozen=True)
class Record:
    """One answer: owner name (lowercase, no trailing dot), type and value.

    ``value`` is an address or name (``A``, ``AAAA``, ``PTR``, ``CNAME``), a
    ``(preference, exchange)`` pair (``MX``) or the tuple of character strings (``TXT``).
    """

    name: str
    rdtype: str
    value: str | tuple[int, str] | tuple[bytes, ...]


class Resolver(Protocol):
    def lookup(self, name: str, rdtype: str) -> list[Record]:
        """Records of ``rdtype`` at ``name``, ``[]`` if none; :class:`DNSError` if unknown."""
        ...


def _normalize(name: str) -> str:
    return name.rstrip(".").lower()


def txt_strings(records: Sequence[Record]) -> list[bytes]:
    """Each TXT record's character strings joined, as RFC 7208 and RFC 6376 read them."""
    out = []
    for r in records:
        if r.rdtype == "TXT" and isinstance(r.value, tuple):
            out.append(b"".join(v for v in r.value if isinstance(v, bytes)))
    return out


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class CachingResolver:
    """Thread-safe resolver shared by all milter connections, caching answers for their TTL."""

    def __init__(
        self,
        nameservers: Sequence[str],
        port: int = 53,
        timeout: float = 5.0,
        cache_size: int = 10000,
        static: Sequence[Record] = (),
        observe_query: Callable[[float], None] | None = None,
    ) -> None:
        self._resolver = dns.resolver.Resolver(configure=False)
        self._resolver.nameservers = list(nameservers)
        self._resolver.port = port
        self._timeout = timeout
        self._cache: OrderedDict[tuple[str, str], tuple[float, list[Record]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.stats = CacheStats()
        # Names listed in [[dns.static]] are answered from there alone, never from DNS.
        self._static = StaticResolver(static) if static else None
        self._static_names = {r.name for r in static}
        # Called with each query's duration in seconds (cache misses only), for metrics.
        self.observe_query = observe_query

    def lookup(self, name: str, rdtype: str, timeout: float | None = None) -> list[Record]:
        key = (_normalize(name), rdtype.upper())
        if self._static is not None and key[0] in self._static_names:
            return self._static.lookup(*key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(key)
                self.stats.hits += 1
                return hit[1]
            self.stats.misses += 1
        started = time.monotonic()
        try:
            records, ttl = self._query(key[0], key[1], timeout or self._timeout)
        finally:
            if self.observe_query is not None:
                self.observe_query(time.monotonic() - started)
        with self._lock:
            self._cache[key] = (now + ttl, records)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return records

    def _query(self, name: str, rdtype: str, timeout: float) -> tuple[list[Record], float]:
        if rdtype not in RDTYPES:
            raise DNSError(f"unsupported record type {rdtype}")
        try:
            answer = self._resolver.resolve(
                name, rdtype, lifetime=timeout, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return [], float(_NEGATIVE_TTL)
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as e:
            raise DNSError(f"DNS {rdtype} {name}: {e.__class__.__name__}") from e
        except (dns.resolver.NoRootSOA, dns.name.LabelTooLong, dns.name.EmptyLabel):
            return [], _NEGATIVE_TTL
        except dns.exception.DNSException as e:
            raise DNSError(f"DNS {rdtype} {name}: {e}") from e
        if answer.rrset is None:
            return [], _negative_ttl(answer.response)
        records = [_record(name, rdtype, rd) for rd in answer.rrset]
        return records, float(answer.rrset.ttl)


def _negative_ttl(response: dns.message.Message | None) -> float:
    if response is not None:
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                return float(min(rrset.ttl, rrset[0].minimum))
    return float(_NEGATIVE_TTL)


def _record(name: str, rdtype: str, rd: object) -> Record:
    if rdtype in ("A", "AAAA"):
        return Record(name, rdtype, str(rd.address))  # type: ignore[attr-defined]
    if rdtype == "MX":
        exchange = rd.exchange.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
        return Record(name, rdtype, (int(rd.preference), exchange))  # type: ignore[attr-defined]
    if rdtype in ("PTR", "CNAME"):
        return Record(name, rdtype, rd.target.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
    return Record(name, rdtype, tuple(rd.strings))  # type: ignore[attr-defined]


class BudgetedResolver:
    """One message's view of a resolver: every lookup shares a wall-clock budget.

    The budget keeps the whole message under the MTA's milter timeouts; when it
    is spent, lookups fail as temporary errors and the message goes on without a card.
    """

    def __init__(
        self, base: CachingResolver, budget: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._base = base
        self._clock = clock
        self._deadline = clock() + budget

    def lookup(self, name: str, rdtype: str) -> list[Record]:
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise DNSError(f"DNS budget for this message spent before {rdtype} {name}")
        return self._base.lookup(name, rdtype, timeout=min(remaining, self._base._timeout))


class StaticResolver:
    """A resolver over a fixed table, for unit tests and the RFC 7208 suite.

    ``failing`` names time out for every type; ``timeouts`` lists single
    ``(name, rdtype)`` pairs that time out.  CNAMEs are followed and the answer is
    flattened onto the queried name, as :class:`CachingResolver` returns it; a loop
    or over-long chain answers nothing.
    """

    # Longest CNAME chain followed (RFC 1034 gives no limit; resolvers use about this).
    MAX_CNAME_HOPS = 10

    def __init__(
        self,
        records: Sequence[Record] = (),
        failing: Sequence[str] = (),
        timeouts: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._records = list(records)
        self._failing = {_normalize(n) for n in failing}
        self._timeouts = {(_normalize(n), t.upper()) for n, t in timeouts}

    def lookup(self, name: str, rdtype: str) -> list[Record]:
        qname, rdtype = _normalize(name), rdtype.upper()
        key, seen = qname, set[str]()
        while len(seen) <= self.MAX_CNAME_HOPS:
            if key in self._failing or (key, rdtype) in self._timeouts:
                raise DNSError(f"DNS {rdtype} {name}: timeout (static)")
            found = self._at(key, rdtype)
            if found or rdtype == "CNAME":
                return found if key == qname else [Record(qname, rdtype, r.value) for r in found]
            cname = self._at(key, "CNAME")
            if not cname or key in seen or not isinstance(cname[0].value, str):
                return []
            seen.add(key)
            key = _normalize(cname[0].value)
        return []

    def _at(self, key: str, rdtype: str) -> list[Record]:
        return [r for r in self._records if r.name == key and r.rdtype == rdtype]


def static_record(name: str, rdtype: str, value: str) -> Record:
    """A configured record as the resolver returns it (TXT split into 255-byte strings)."""
    name = _normalize(name)
    if rdtype == "TXT":
        data = value.encode("utf-8")
        return Record(
            name, rdtype, tuple(data[i : i + 255] for i in range(0, len(data), 255)) or (b"",)
        )
    if rdtype == "MX":
        preference, _, exchange = value.partition(" ")
        return Record(name, rdtype, (int(preference), _normalize(exchange)))
    if rdtype in ("PTR", "CNAME"):
        return Record(name, rdtype, _normalize(value))
    return Record(name, rdtype, value)
