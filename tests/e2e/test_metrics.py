"""The milter's metrics port, scraped over HTTP around a genuine and a spoofed invoice,
and its log line for a message carrying the MTA's queue id."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from . import checks
from .harness import Mta
from .messages import Invoice, invoice_mail
from .milterproc import CardKeys, MilterProcess
from .scenarios import XERO_FROM, from_xero, signed_xero_invoice
from .world import ATTACKER_MX, BOB

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode("utf-8")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_metrics_move_with_a_genuine_and_a_spoofed_invoice(
    mta: Mta, milter: tuple[MilterProcess, CardKeys]
) -> None:
    process = milter[0]
    assert process.metrics_port is not None, "the e2e milter was started without a metrics port"
    before = scrape(process.metrics_port)

    genuine = from_xero(mta, signed_xero_invoice(mta))[0]
    checks.card_claims(genuine, mta.card_keys.verifier)
    spoofed_mail = mta.dkim["attacker.test"].sign(invoice_mail(Invoice(), XERO_FROM, [BOB]))
    spoofed = mta.deliver_one(spoofed_mail, ATTACKER_MX, "bounce@attacker.test", BOB)
    checks.assert_removed(spoofed, "dkim_fail", "unaligned")
    reason = checks.verdict(spoofed)[1]["reason"]

    after = scrape(process.metrics_port)
    moved = {key: value - before.get(key, 0.0) for key, value in after.items()}

    def delta(name: str, **labels: str) -> float:
        return total(moved, name, **labels)

    assert delta("inboxpay_milter_messages_total") == 2
    assert delta("inboxpay_milter_cards_issued_total") == 1
    assert delta("inboxpay_milter_requests_removed_total", reason=reason) == 1
    assert delta("inboxpay_milter_requests_removed_total") == 1
    assert delta("inboxpay_milter_analysis_failures_total") == 0
    # One result per message for each method (DKIM: one per signature, each signed once).
    for method in ("spf", "spf_helo", "dkim", "dmarc"):
        assert delta("inboxpay_milter_auth_results_total", method=method) == 2, method
    assert delta("inboxpay_milter_auth_results_total", method="spf", result="pass") >= 1
    assert delta("inboxpay_milter_auth_results_total", method="dkim", result="pass") >= 1
    assert delta("inboxpay_milter_auth_results_total", method="dmarc", result="pass") >= 1

    # Every lookup is a hit or a miss, and every miss one timed query.
    lookups = delta("inboxpay_milter_dns_cache_hits_total") + delta(
        "inboxpay_milter_dns_cache_misses_total"
    )
    assert lookups >= 2 * 3  # at least SPF, the DKIM key and DMARC for each message
    queries = total(after, "inboxpay_milter_dns_query_seconds_count")
    assert 0 < queries == total(after, "inboxpay_milter_dns_cache_misses_total")
    assert total(after, "inboxpay_milter_dns_query_seconds_sum") > 0

    # Once per message for each stage (all of its headers, recipients, chunks together);
    # eoh is not asked for, so it is not timed.
    for stage in ("envfrom", "envrcpt", "header", "body", "eom"):
        assert delta("inboxpay_milter_callback_seconds_count", callback=stage) == 2, stage
    for stage in ("connect", "helo"):
        assert delta("inboxpay_milter_callback_seconds_count", callback=stage) >= 2, stage
    assert delta("inboxpay_milter_callback_seconds_count", callback="eoh") == 0
    assert delta("inboxpay_milter_callback_seconds_sum", callback="eom") > 0
    assert total(after, "process_resident_memory_bytes") > 0

    # Each message's log line names the queue id the MTA reported to the SMTP client.
    lines = process.log.read_text("utf-8").splitlines()
    verdicts = {
        entry.get("queue_id"): entry.get("verdict")
        for entry in (json.loads(line) for line in lines if line.startswith("{"))
        if entry.get("msg") == "message processed"
    }
    assert verdicts.get(genuine.queue_id) == "card", verdicts
    assert verdicts.get(spoofed.queue_id) == f"removed; reason={reason}", verdicts
