"""Unit tests of the SPF check over a static zone."""

from __future__ import annotations

import threading

import pytest

from inboxpay.auth.spf import SpfResult, check_helo, check_mailfrom
from inboxpay.dns import Record, StaticResolver

IP = "192.0.2.10"
OTHER_IP = "198.51.100.7"


def txt(name: str, *strings: str) -> Record:
    return Record(name, "TXT", tuple(s.encode() for s in strings))


ZONE = StaticResolver(
    [
        txt("pass.example", "v=spf1 ip4:192.0.2.0/24 -all"),
        txt("fail.example", "v=spf1 ip4:203.0.113.1 -all"),
        txt("soft.example", "v=spf1 ", "ip4:203.0.113.1 ~all"),  # split strings are joined
        txt("other.example", "google-site-verification=abc"),
        txt("mx.pass.example", "v=spf1 a -all"),
        Record("mx.pass.example", "A", IP),
        txt("alias.example", "v=spf1 include:target.example -all"),
        Record("target.example", "CNAME", "real.example."),
        txt("real.example", "v=spf1 ip4:192.0.2.10 -all"),
    ],
    failing=["down.example"],
)


@pytest.mark.parametrize(
    ("sender", "result"),
    [
        ("alice@pass.example", "pass"),
        ("alice@fail.example", "fail"),
        ("alice@soft.example", "softfail"),
        ("alice@other.example", "none"),
        ("alice@nowhere.example", "none"),
        ("alice@down.example", "temperror"),
        ("alice@alias.example", "pass"),
    ],
)
def test_mailfrom_results(sender: str, result: str) -> None:
    got = check_mailfrom(IP, sender, "mx.pass.example", ZONE)
    assert got.result == result
    assert (got.domain, got.identity) == (sender.split("@")[1], "mailfrom")


def test_fail_carries_explanation() -> None:
    got = check_mailfrom(OTHER_IP, "<alice@pass.example>", "mx.pass.example", ZONE)
    assert got == SpfResult("fail", "pass.example", "mailfrom", "SPF fail - not authorized")


def test_temperror_explains_the_dns_failure() -> None:
    got = check_mailfrom(IP, "alice@down.example", "mx.pass.example", ZONE)
    assert got.result == "temperror"
    assert "down.example" in got.explanation


@pytest.mark.parametrize("null", ["", "<>", " <> "])
def test_null_sender_checks_postmaster_at_helo(null: str) -> None:
    assert check_mailfrom(IP, null, "mx.pass.example", ZONE) == SpfResult(
        "pass", "mx.pass.example", "mailfrom", "sender SPF authorized"
    )
    assert check_mailfrom(OTHER_IP, null, "mx.pass.example", ZONE).result == "fail"


def test_helo_is_checked_separately_from_mailfrom() -> None:
    helo = check_helo(IP, "fail.example", ZONE)
    mailfrom = check_mailfrom(IP, "alice@pass.example", "fail.example", ZONE)
    assert (helo.result, helo.domain, helo.identity) == ("fail", "fail.example", "helo")
    assert (mailfrom.result, mailfrom.domain) == ("pass", "pass.example")


@pytest.mark.parametrize(
    "helo", ["[192.0.2.10]", "192.0.2.10", "[IPv6:2001:db8::1]", "localhost", ""]
)
def test_helo_that_is_no_domain_has_none(helo: str) -> None:
    assert check_helo(IP, helo, StaticResolver(failing=[helo])).result == "none"


def test_bad_client_address_is_permerror() -> None:
    got = check_mailfrom("not-an-ip", "alice@pass.example", "mx.pass.example", ZONE)
    assert got.result == "permerror"
    assert got.explanation


def test_unexpected_resolver_error_does_not_propagate() -> None:
    class Broken:
        def lookup(self, name: str, rdtype: str) -> list[Record]:
            raise RuntimeError("boom")

    got = check_mailfrom(IP, "alice@pass.example", "mx.pass.example", Broken())
    assert got.result == "permerror"
    assert "boom" in got.explanation


class Rendezvous:
    """Waits in every lookup until the other thread is mid-check too."""

    def __init__(self, zone: StaticResolver, barrier: threading.Barrier) -> None:
        self._zone, self._barrier = zone, barrier

    def lookup(self, name: str, rdtype: str) -> list[Record]:
        self._barrier.wait(timeout=5)
        return self._zone.lookup(name, rdtype)


def _policy_zone(inner: str, barrier: threading.Barrier) -> Rendezvous:
    return Rendezvous(
        StaticResolver(
            [
                txt("shared.example", "v=spf1 include:inc.shared.example -all"),
                txt("inc.shared.example", inner),
            ]
        ),
        barrier,
    )


def test_threads_use_their_own_resolver() -> None:
    # Same names, opposite policies; both threads meet in the first lookup, so the
    # include's lookup would read the other thread's resolver if it were shared.
    barrier = threading.Barrier(2)
    zones = {
        "pass": _policy_zone("v=spf1 ip4:192.0.2.10 -all", barrier),
        "fail": _policy_zone("v=spf1 -all", barrier),
    }
    seen: dict[str, list[str]] = {k: [] for k in zones}

    def run(policy: str) -> None:
        for _ in range(20):
            got = check_mailfrom(IP, "a@shared.example", "h.example", zones[policy])
            seen[policy].append(got.result)

    threads = [threading.Thread(target=run, args=(k,)) for k in zones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"pass": ["pass"] * 20, "fail": ["fail"] * 20}
