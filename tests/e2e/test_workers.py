"""[milter] workers through a real Postfix: a worker killed under load is replaced, and
no mail is lost or held meanwhile."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from . import checks
from .dnsserver import DnsServer
from .harness import Instance, private_instance
from .mail import Delivery, wait_for_delivery
from .postfix import milter_warnings
from .scenarios import signed_xero_invoice, signed_xero_notice
from .test_never_lose_mail import connection
from .world import BOB, DkimKey

pytestmark = pytest.mark.e2e

# A forged verdict on the notices: the milter removes it, so its absence shows the
# notice went through the milter (a notice gets no header of ours).
FORGED_VERDICT = f"{checks.VERDICT}: card"
SESSIONS = 6  # SMTP sessions at once, each one message


def workers_of(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def milter_checked(d: Delivery, invoice: bool) -> bool:
    """Whether the milter handled the message (a card, or the forged verdict removed)."""
    if invoice:
        return bool(checks.rawmime.values(d.raw, checks.CARD))
    return checks.rawmime.values(d.raw, checks.VERDICT) == []


@pytest.fixture
def two_workers(e2e_dir: Path, dns_server: DnsServer, dkim_keys: dict[str, DkimKey]) -> Instance:
    with private_instance(e2e_dir / "workers", dns_server.port, dkim_keys, {"workers": 2}) as i:
        yield i  # type: ignore[misc]


def send(instance: Instance, mails: list[tuple[bytes, bool]]) -> list[str]:
    port = instance.mta.postfix.smtp_port
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        futures = [pool.submit(connection, port, [m], False) for m, _ in mails]
        return [f.result()[0] for f in futures]


def delivered(instance: Instance, queue_ids: list[str]) -> list[Delivery]:
    maildir = instance.mta.postfix.maildir(BOB)
    return [Delivery(q, BOB, wait_for_delivery(maildir, q)) for q in queue_ids]


def test_a_killed_worker_is_replaced_and_no_mail_is_lost(two_workers: Instance) -> None:
    instance = two_workers
    parent = instance.milter.pid
    workers = workers_of(parent)
    assert len(workers) == 2, workers
    mta = instance.mta
    invoice = signed_xero_invoice(mta)
    notice = signed_xero_notice(mta, extra_headers=[FORGED_VERDICT])
    mails = [(invoice, True) if i % 4 == 0 else (notice, False) for i in range(80)]

    # Load, and one worker killed in the middle of it.
    start = mta.postfix.log_size()
    with ThreadPoolExecutor(max_workers=1) as killer:
        load = killer.submit(send, instance, mails)
        # In the middle of it: once a few messages are through, while the rest are not.
        deadline = time.monotonic() + 60
        while mta.postfix.log_since(start).count("status=sent") < 8 and not load.done():
            assert time.monotonic() < deadline, "no mail got through before the kill"
            time.sleep(0.02)
        assert not load.done(), "the load ended before the kill: nothing was in flight"
        os.kill(workers[0], signal.SIGKILL)
        started = time.monotonic()
        queue_ids = load.result()
    sent_for = time.monotonic() - started
    # Every message accepted by Postfix reaches the mailbox: none lost, none held.
    deliveries = delivered(instance, queue_ids)
    assert len(deliveries) == len(mails)
    skipped = [
        d for d, (_, inv) in zip(deliveries, mails, strict=True) if not milter_checked(d, inv)
    ]
    warnings = milter_warnings(mta.postfix.log_since(start))
    # Only sessions open on the killed worker at that moment can miss the milter; Postfix
    # logs each (milter_default_action = accept delivers them as they came).
    assert len(skipped) <= min(SESSIONS, len(warnings)), (skipped, warnings)
    assert sent_for < 60, f"the load took {sent_for:.0f} s after the kill"

    # The parent started another worker, and said so.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        len(workers_of(parent)) != 2 or workers[0] in workers_of(parent)
    ):
        time.sleep(0.1)
    now = workers_of(parent)
    assert len(now) == 2 and workers[0] not in now and workers[1] in now, (workers, now)
    lines = [json.loads(x) for x in instance.milter.log.read_text().splitlines() if x[:1] == "{"]
    exits = [x for x in lines if x.get("msg") == "milter worker exited; starting another"]
    assert [(x["pid"], x["status"]) for x in exits] == [(workers[0], "SIGKILL")], exits

    # After the restart: every message through the milter, with no warning at all.
    start = mta.postfix.log_size()
    again = [(invoice, True), (notice, False)] * 10
    deliveries = delivered(instance, send(instance, again))
    assert milter_warnings(mta.postfix.log_since(start)) == []
    for d, (_, inv) in zip(deliveries, again, strict=True):
        assert milter_checked(d, inv), checks.where(d)
        if inv:
            checks.card_claims(d, mta.card_keys.verifier)
    instance.milter.check_alive()
