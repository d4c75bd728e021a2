"""``inboxpay keys rotate-signing`` reaches a running milter without a restart, and no mail
goes without a card meanwhile: each card verifies with the keys a sidecar would load."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inboxpay import config
from inboxpay.card.header import HEADER
from inboxpay.card.keyring import load_signing_keys

from . import checks, rawmime
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
def rotatable(
    e2e_dir: Path, dns_server: DnsServer, dkim_keys: dict[str, DkimKey]
) -> Iterator[Instance]:
    with private_instance(
        e2e_dir / "key-rotation",
        dns_server.port,
        dkim_keys,
        milter={"org_refresh_seconds": REFRESH},
    ) as instance:
        yield instance


def deliver(instance: Instance) -> Delivery:
    start = instance.mta.postfix.log_size()
    d = instance.mta.deliver_one(signed_xero_invoice(instance.mta), XERO_MX, XERO_BOUNCE, BOB)
    assert milter_warnings(instance.mta.postfix.log_since(start)) == [], checks.where(d)
    return d


def card_kid(d: Delivery) -> str:
    (value,) = rawmime.values(d.raw, HEADER)
    header = re.sub(r"\s+", "", value).split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_rotate_signing_reaches_the_running_milter(rotatable: Instance) -> None:
    path = rotatable.milter.config
    before = deliver(rotatable)

    done = subprocess.run(
        [sys.executable, "-m", "inboxpay", "keys", "rotate-signing", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # Right after the rotation, before the milter looked: still the old key, still a card.
    racing = deliver(rotatable)
    old_kid = card_kid(before)
    after = repeat_until(lambda: deliver(rotatable), lambda d: card_kid(d) != old_kid, TAKEN)
    rotatable.milter.check_alive()  # no restart

    keyring = load_signing_keys(config.load(path).signing)
    verifier = keyring.verifier()  # as the sidecar loads it: current and retired keys
    for d in (before, racing, after):
        assert checks.card_claims(d, verifier)["v"] == 1
    assert keyring.retired[0].kid == old_kid != keyring.kid
    assert card_kid(racing) in (old_kid, keyring.kid)
    assert card_kid(after) == keyring.kid
