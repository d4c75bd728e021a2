"""The milter's metrics: counted from pipeline outcomes, callback and DNS timings, the
cache collector, the HTTP port and its config key."""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from socket import AF_INET

import Milter
import pytest
from Milter import testctx

from inboxpay import config
from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.dmarc import Alignment
from inboxpay.auth.spf import SpfResult
from inboxpay.dev.init import init
from inboxpay.dns import CachingResolver
from inboxpay.errors import ConfigError
from inboxpay.milter.decide import Action, Reason, Skip, Verdict
from inboxpay.milter.edits import Edits
from inboxpay.milter.facts import Evidence, MessageFacts
from inboxpay.milter.filter import InboxPayMilter
from inboxpay.milter.metrics import MilterMetrics
from inboxpay.milter.metrics_http import MetricsPortError, serve
from inboxpay.milter.pipeline import Outcome

REPO = Path(__file__).resolve().parents[2]


def evidence(
    spf: str | None = "pass",
    helo: str | None = "none",
    dkim: tuple[str, ...] = ("pass",),
    internal: bool = False,
) -> Evidence:
    return Evidence(
        from_addresses=("billing@post.xero.test",),
        from_fields=1,
        message_id="<m@post.xero.test>",
        recipients=("bob@example.test",),
        spf=SpfResult(spf, "post.xero.test", "mailfrom", "") if spf else None,
        spf_helo=SpfResult(helo, "mx.post.xero.test", "helo", "") if helo else None,
        dkim=tuple(DkimResult("post.xero.test", "s1", r, True, "abc") for r in dkim),
        dmarc=None,
        dmarc_error=False,
        requests=(),
        internal=internal,
        truncated=False,
    )


def outcome(verdict: Verdict, ev: Evidence, dmarc: str | None = "pass") -> Outcome:
    alignment = Alignment(dmarc, "post.xero.test", True) if dmarc else None
    return Outcome(ev, verdict, Edits(), alignment)


def value(m: MilterMetrics, name: str, **labels: str) -> float:
    found = m.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_outcomes_are_counted_once_each() -> None:
    m = MilterMetrics()
    m.record(outcome(Verdict(Action.CARD), evidence()))
    m.record(
        outcome(Verdict(Action.REMOVE, Reason.DKIM_FAIL), evidence(spf="fail", dkim=("fail",)))
    )
    m.record(outcome(Verdict(Action.REMOVE, Reason.NOT_PARTNER), evidence(dkim=())))
    m.record(outcome(Verdict(Action.SKIP, skip=Skip.TEMPERROR), evidence(dkim=("temperror",))))
    m.record(outcome(Verdict(Action.PASS), evidence(dkim=("pass", "fail")), dmarc="none"))
    m.record(outcome(Verdict(Action.PASS), evidence(internal=True), dmarc=None))
    m.failed()

    assert value(m, "inboxpay_milter_messages_total") == 7
    assert value(m, "inboxpay_milter_cards_issued_total") == 1
    assert value(m, "inboxpay_milter_requests_removed_total", reason="dkim_fail") == 1
    assert value(m, "inboxpay_milter_requests_removed_total", reason="not_partner") == 1
    assert value(m, "inboxpay_milter_requests_skipped_total", reason="temperror") == 1
    assert value(m, "inboxpay_milter_analysis_failures_total") == 1
    # Internal mail is not checked: five messages' worth of results.
    auth = {
        (s.labels["method"], s.labels["result"]): s.value
        for family in m.registry.collect()
        if family.name == "inboxpay_milter_auth_results"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert auth == {
        ("spf", "pass"): 4,
        ("spf", "fail"): 1,
        ("spf_helo", "none"): 5,
        ("dkim", "pass"): 2,
        ("dkim", "fail"): 2,
        ("dkim", "none"): 1,
        ("dkim", "temperror"): 1,
        ("dmarc", "pass"): 4,
        ("dmarc", "none"): 1,
    }


def test_every_removal_and_skip_reason_is_exported_from_the_start() -> None:
    m = MilterMetrics()
    for reason in Reason:
        assert (
            m.registry.get_sample_value(
                "inboxpay_milter_requests_removed_total", {"reason": reason.value}
            )
            == 0
        )
    for skip in Skip:
        assert (
            m.registry.get_sample_value(
                "inboxpay_milter_requests_skipped_total", {"reason": skip.value}
            )
            == 0
        )


class Ctx(testctx.TestCtx):  # type: ignore[misc]
    def addheader(self, field: str, value: str, idx: int) -> None:
        pass


def test_callbacks_are_timed_and_the_message_counted_at_eom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(testctx.TestCtx, "default_opts", [Milter.CURR_ACTS, 0x1FFFFF, 0, 0])
    m = MilterMetrics()

    def process(facts: MessageFacts) -> Outcome:
        return outcome(Verdict(Action.CARD), evidence())

    monkeypatch.setattr(Milter, "factory", functools.partial(InboxPayMilter, process, 65536, m))
    ctx = Ctx()
    ctx._negotiate()
    ctx._stage = Milter.M_CONNECT
    Milter.connect_callback(ctx, "mx.post.xero.test", AF_INET, ("192.0.2.10", 40000))
    ctx._stage = Milter.M_HELO
    ctx.getpriv().hello("mx.post.xero.test")
    ctx._envfrom("<bounce@post.xero.test>")
    for rcpt in ("<bob@example.test>", "<carol@example.test>"):
        ctx._envrcpt(rcpt)
    for name, text in (("From", " a@post.xero.test"), ("To", " bob"), ("Subject", " hi")):
        ctx._header(name, text)
    ctx._eoh()
    ctx.getpriv().body(b"hello\r\n")
    assert ctx._eom() == Milter.ACCEPT

    counts = {
        stage: value(m, "inboxpay_milter_callback_seconds_count", callback=stage)
        for stage in ("connect", "helo", "envfrom", "envrcpt", "header", "body", "eom")
    }
    assert counts == {
        "connect": 1,
        "helo": 1,
        "envfrom": 1,
        "envrcpt": 1,  # once per message: the two recipients' callbacks together
        "header": 1,
        "body": 1,
        "eom": 1,
    }
    assert value(m, "inboxpay_milter_callback_seconds_sum", callback="eom") > 0
    assert value(m, "inboxpay_milter_messages_total") == 1
    assert value(m, "inboxpay_milter_cards_issued_total") == 1


def test_a_failing_pipeline_counts_as_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testctx.TestCtx, "default_opts", [Milter.CURR_ACTS, 0x1FFFFF, 0, 0])
    m = MilterMetrics()

    def process(facts: MessageFacts) -> Outcome:
        raise RuntimeError("analysis blew up")

    monkeypatch.setattr(Milter, "factory", functools.partial(InboxPayMilter, process, 65536, m))
    ctx = Ctx()
    ctx._negotiate()
    ctx._stage = Milter.M_CONNECT
    Milter.connect_callback(ctx, "mx.test", AF_INET, ("192.0.2.10", 40000))
    ctx._envfrom("<a@b.test>")
    ctx._envrcpt("<bob@example.test>")
    assert ctx._eom() == Milter.ACCEPT
    assert value(m, "inboxpay_milter_messages_total") == 1
    assert value(m, "inboxpay_milter_analysis_failures_total") == 1
    assert value(m, "inboxpay_milter_cards_issued_total") == 0


def test_dns_queries_are_timed_and_cache_hits_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    m = MilterMetrics()
    resolver = CachingResolver(["192.0.2.53"], observe_query=m.dns_query.observe)
    m.watch_cache(lambda: resolver.stats)
    monkeypatch.setattr(resolver, "_query", lambda name, rdtype, timeout: ([], 300.0))
    resolver.lookup("post.xero.test", "TXT")
    resolver.lookup("post.xero.test", "TXT")
    resolver.lookup("_dmarc.post.xero.test", "TXT")
    assert value(m, "inboxpay_milter_dns_query_seconds_count") == 2
    assert value(m, "inboxpay_milter_dns_cache_hits_total") == 1
    assert value(m, "inboxpay_milter_dns_cache_misses_total") == 2


def test_served_over_http() -> None:
    m = MilterMetrics()
    m.messages.inc()
    server = serve(m.registry, "127.0.0.1", 0)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "inboxpay_milter_messages_total 1.0" in text
    assert 'inboxpay_milter_callback_seconds_bucket{callback="eom",le="0.0001"} 0.0' in text
    assert "process_resident_memory_bytes" in text


def test_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortError) as caught:
            serve(MilterMetrics().registry, "127.0.0.1", port)
    assert str(caught.value) == (
        f"[milter] metrics_listen: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_the_milter_command_exits_with_one_line_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as spare:
            spare.bind(("127.0.0.1", 0))
            milter_port = spare.getsockname()[1]
        path = init(tmp_path / "dev", port=milter_port, metrics_port=port)
        done = subprocess.run(
            [sys.executable, "-m", "inboxpay", "milter", "--config", str(path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"inboxpay: [milter] metrics_listen: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"
    )


def _load(tmp_path: Path, line: str) -> config.Config:
    path = init(tmp_path / "cfg")
    text = path.read_text("utf-8")
    path.write_text(text.replace('metrics_listen = "127.0.0.1:9894"', line), "utf-8")
    return config.load(path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('metrics_listen = "127.0.0.1:9894"', ("127.0.0.1", 9894)),
        ('metrics_listen = "[::1]:9100"', ("::1", 9100)),
        ('metrics_listen = "localhost:9100"', ("localhost", 9100)),
        ('metrics_listen = ""', None),
        ("", None),  # absent: no metrics port
    ],
)
def test_metrics_listen_is_read(
    tmp_path: Path, line: str, expected: tuple[str, int] | None
) -> None:
    assert _load(tmp_path, line).milter.metrics_listen == expected


@pytest.mark.parametrize(
    "bad", ['"9894"', '"127.0.0.1:"', '"127.0.0.1:0"', '"127.0.0.1:70000"', '":9894"', "9894"]
)
def test_a_bad_metrics_listen_names_the_key(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"metrics_listen = {bad}")
    assert "[milter] metrics_listen:" in str(caught.value)
