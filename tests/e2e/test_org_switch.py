"""The tenant switch reaches a running milter through the store, without a restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import checks
from .dnsserver import DnsServer
from .harness import Instance, private_instance
from .mail import Delivery
from .postfix import milter_warnings
from .procs import repeat_until
from .scenarios import XERO_BOUNCE, signed_xero_invoice
from .world import BOB, XERO_MX, DkimKey

pytestmark = pytest.mark.e2e

REFRESH = 1  # seconds; production allows at most 30
TAKEN = REFRESH * 5 + 5  # seconds a change may take to show in delivered mail, at most


@pytest.fixture(scope="module")
def switchable(
    e2e_dir: Path, dns_server: DnsServer, dkim_keys: dict[str, DkimKey]
) -> Iterator[Instance]:
    with private_instance(
        e2e_dir / "org-switch", dns_server.port, dkim_keys, milter={"org_refresh_seconds": REFRESH}
    ) as instance:
        yield instance


def org_set(instance: Instance, domain: str, enabled: bool) -> None:
    config = instance.milter.config
    subprocess.run(
        [
            sys.executable,
            "-m",
            "inboxpay",
            "org",
            "set",
            domain,
            "--pay-enabled",
            str(enabled).lower(),
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
    )


def deliver(instance: Instance) -> Delivery:
    start = instance.mta.postfix.log_size()
    d = instance.mta.deliver_one(signed_xero_invoice(instance.mta), XERO_MX, XERO_BOUNCE, BOB)
    assert milter_warnings(instance.mta.postfix.log_since(start)) == [], checks.where(d)
    return d


def test_org_set_reaches_the_running_milter(switchable: Instance) -> None:
    first = deliver(switchable)
    assert checks.verdict(first)[0] == "card", checks.where(first)

    # Mail after the switch, until the milter has taken it (within a few refreshes).
    org_set(switchable, "example.test", False)
    off = repeat_until(lambda: deliver(switchable), lambda d: checks.verdict(d)[0] != "card", TAKEN)
    assert checks.verdict(off) == ("removed", {"reason": "org_disabled"}), checks.where(off)
    checks.assert_no_card(off)

    org_set(switchable, "example.test", True)
    on = repeat_until(lambda: deliver(switchable), lambda d: checks.verdict(d)[0] == "card", TAKEN)
    assert checks.verdict(on)[0] == "card", checks.where(on)
