"""The openspf.org RFC 7208 test suite (vendored from the pyspf 2.0.14 sdist) against our SPF check.

Zone data is translated the way pyspf's own ``test/testspf.py`` driver does it:
``SPF`` records stand in for ``TXT`` unless the name lists a ``TXT`` (even ``NONE``),
a bare ``TIMEOUT`` makes every type not listed before it time out, and a test
with an empty ``mailfrom`` checks the HELO identity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from inboxpay.auth.spf import check_helo, check_mailfrom
from inboxpay.dns import Record, StaticResolver

SUITE = Path(__file__).resolve().parents[1] / "data" / "rfc7208-tests.yml"

# Every type a lookup may ask for, so that a bare TIMEOUT covers them all.
_ALL_TYPES = ("A", "AAAA", "MX", "PTR", "TXT", "SPF", "CNAME")

# Cases pyspf itself gets wrong (id -> why); strict, so a fix shows up as XPASS.
KNOWN_PYSPF_FAILURES: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    id: str
    zone: StaticResolver
    test: dict[str, Any]


def _strings(value: Any) -> tuple[bytes, ...]:
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(s).encode("utf-8") for s in items)


def _record(name: str, rdtype: str, value: Any) -> Record:
    if rdtype in ("TXT", "SPF"):
        return Record(name, rdtype, _strings(value))
    if rdtype == "MX":
        pref, exchange = value
        return Record(name, rdtype, (int(pref), str(exchange)))
    return Record(name, rdtype, str(value))


def _zone_entries(name: str, entries: list[Any]) -> tuple[list[Record], list[tuple[str, str]]]:
    records: list[Record] = []
    timeouts: list[tuple[str, str]] = []
    listed: set[str] = set()  # types named at all; a TXT (even NONE) stops TXT from SPF
    for entry in entries:
        if entry == "TIMEOUT":
            answered = {r.rdtype for r in records}
            timeouts += [(name, t) for t in _ALL_TYPES if t not in answered]
            continue
        ((rdtype, value),) = entry.items()
        listed.add(rdtype)
        if value == "TIMEOUT":
            timeouts.append((name, rdtype))
        elif value != "NONE":
            records.append(_record(name, rdtype, value))
    if "TXT" not in listed:
        records += [Record(name, "TXT", r.value) for r in records if r.rdtype == "SPF"]
    return records, timeouts


def _resolver(zonedata: dict[str, list[Any]]) -> StaticResolver:
    records: list[Record] = []
    timeouts: list[tuple[str, str]] = []
    for name, entries in zonedata.items():
        zone_records, zone_timeouts = _zone_entries(name.rstrip(".").lower(), entries)
        records += zone_records
        timeouts += zone_timeouts
    return StaticResolver(records, timeouts=timeouts)


def _cases() -> Iterator[Any]:
    with SUITE.open("rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    for scenario in scenarios:
        zone = _resolver(scenario["zonedata"])
        for name, test in scenario["tests"].items():
            case_id = f"{scenario['description']}::{name}"
            marks = []
            if case_id in KNOWN_PYSPF_FAILURES:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_PYSPF_FAILURES[case_id]))
            yield pytest.param(Case(case_id, zone, test), id=case_id, marks=marks)


@pytest.mark.parametrize("case", list(_cases()))
def test_rfc7208(case: Case) -> None:
    t = case.test
    if t["mailfrom"]:
        got = check_mailfrom(t["host"], t["mailfrom"], t["helo"], case.zone)
    else:
        got = check_helo(t["host"], t["helo"], case.zone)
    expected = t["result"] if isinstance(t["result"], list) else [t["result"]]
    assert got.result in expected, f"{case.id}: {got}; spec {t['spec']}"
    # The suite's driver sets the default explanation to "DEFAULT"; only exp= texts are ours.
    if t.get("explanation") not in (None, "DEFAULT"):
        assert got.explanation == t["explanation"], f"{case.id}: {got}"


def test_suite_is_complete() -> None:
    ids = [p.id for p in _cases()]
    assert len(ids) == len(set(ids)) == 203
    assert set(KNOWN_PYSPF_FAILURES) <= set(ids)
