"""The milter's resolver: TTL cache, errors as DNSError, and the per-message budget.

dnspython's own resolver is replaced by a stub here; tests/e2e runs it against dnsmasq.
"""

from __future__ import annotations

import time
from typing import Any

import dns.exception
import dns.message
import dns.resolver
import pytest

from inboxpay.dns import BudgetedResolver, CachingResolver, DNSError


def answer(name: str, rdtype: str, text: str, ttl: int) -> dns.resolver.Answer:
    query = dns.message.make_query(name, rdtype)
    response = dns.message.make_response(query)
    rrset = response.find_rrset(
        response.answer, query.question[0].name, 1, dns.rdatatype.from_text(rdtype), create=True
    )
    rrset.add(dns.rdata.from_text(1, dns.rdatatype.from_text(rdtype), text), ttl)
    return dns.resolver.Answer(query.question[0].name, dns.rdatatype.from_text(rdtype), 1, response)


class Stub:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls = 0
        self.lifetimes: list[float] = []

    def __call__(self, name: str, rdtype: str, lifetime: float, **_: Any) -> Any:
        self.calls += 1
        self.lifetimes.append(lifetime)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def resolver_with(stub: Stub) -> CachingResolver:
    r = CachingResolver(["127.0.0.1"], port=5300, timeout=3.0)
    r._resolver.resolve = stub  # type: ignore[method-assign]
    return r


def test_answers_are_cached_for_their_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = Stub(answer("example.com", "TXT", '"v=spf1 -all"', ttl=300))
    r = resolver_with(stub)
    first = r.lookup("Example.COM.", "TXT")
    assert first[0].value == (b"v=spf1 -all",)
    assert r.lookup("example.com", "TXT") == first
    assert stub.calls == 1 and (r.stats.hits, r.stats.misses) == (1, 1)
    later = time.monotonic() + 301
    monkeypatch.setattr(time, "monotonic", lambda: later)
    r.lookup("example.com", "TXT")
    assert stub.calls == 2  # expired


def test_nxdomain_is_an_empty_answer_and_cached() -> None:
    stub = Stub(dns.resolver.NXDOMAIN())
    r = resolver_with(stub)
    assert r.lookup("nope.example", "A") == [] and r.lookup("nope.example", "A") == []
    assert stub.calls == 1


@pytest.mark.parametrize("error", [dns.exception.Timeout(), dns.resolver.NoNameservers()])
def test_timeouts_and_servfail_are_dns_errors(error: Exception) -> None:
    r = resolver_with(Stub(error))
    with pytest.raises(DNSError):
        r.lookup("slow.example", "TXT")


def test_the_budget_bounds_each_lookup_and_then_refuses() -> None:
    stub = Stub(answer("a.example", "A", "192.0.2.1", ttl=0))
    now = [100.0]
    budgeted = BudgetedResolver(resolver_with(stub), budget=0.5, clock=lambda: now[0])
    now[0] += 0.2
    budgeted.lookup("a.example", "A")
    assert stub.lifetimes[0] == pytest.approx(0.3)  # what is left of the budget, no more
    now[0] += 0.35
    with pytest.raises(DNSError, match="budget"):
        budgeted.lookup("b.example", "A")


def test_static_records_answer_without_dns() -> None:
    from inboxpay.dns import static_record

    long_key = "v=DKIM1; k=rsa; p=" + "A" * 400
    stub = Stub(dns.exception.Timeout())  # the network would fail
    r = CachingResolver(
        ["127.0.0.1"],
        static=[
            static_record("S1._domainkey.Sample.test.", "TXT", long_key),
            static_record("sample.test", "MX", "10 mx.sample.test."),
        ],
    )
    r._resolver.resolve = stub  # type: ignore[method-assign]
    (txt,) = r.lookup("s1._domainkey.sample.test", "TXT")
    assert isinstance(txt.value, tuple) and b"".join(txt.value).decode() == long_key
    assert all(len(s) <= 255 for s in txt.value)  # split as DNS would
    assert r.lookup("sample.test", "MX")[0].value == (10, "mx.sample.test")
    assert r.lookup("sample.test", "TXT") == []  # a static name never falls through to DNS
    assert stub.calls == 0
    with pytest.raises(DNSError):
        r.lookup("elsewhere.test", "TXT")  # other names still go to DNS
