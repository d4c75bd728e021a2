#!/usr/bin/env python3
"""Latency a milter adds per message at a fixed rate below the maximum.

The throughput benchmark's path (a private Postfix relaying to smtp-sink, the same
mail, DNS and milters), but the load is paced: ``--rate`` messages per second, each
on a new SMTP connection, in the same 80/20 (``--invoice-share``) mix. For each
message the client times the DATA command to Postfix's 250 reply, which comes only
after every milter has answered at end of message. Configurations run interleaved,
``--runs`` times; the figure is each run's p50 and p99, medians over the runs, and
the difference to the null milter's in the same repetition.

Not a test; see bench/README.md.

    .venv/bin/python bench/milter_latency.py --rate 150 --runs 3
"""

from __future__ import annotations

import argparse
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import traffic  # noqa: E402
from bench.milter_throughput import Sink, start_dns, wait_for_quiet  # noqa: E402
from bench.milters import MILTERS, MilterProcess, Shared  # noqa: E402
from bench.relay_postfix import RelayPostfix  # noqa: E402
from tests.e2e.postfix import milter_warnings  # noqa: E402
from tests.e2e.procs import free_port  # noqa: E402

SENDERS = {s.kind: s for s in traffic.SENDERS}


def send_one(port: int, kind: str, raw: bytes) -> float:
    """One message on its own connection; seconds from DATA to Postfix's 250 after it."""
    sender = SENDERS[kind]
    with smtplib.SMTP("127.0.0.1", port, local_hostname=sender.helo, timeout=60) as smtp:
        # smtplib's mail() sends no EHLO of its own; a real client does (and the milter's
        # SPF check of the HELO name needs it).
        smtp.ehlo()
        smtp.mail(sender.mail_from)
        smtp.rcpt(traffic.RECIPIENT)
        started = time.perf_counter()
        code, _ = smtp.data(raw)
        took = time.perf_counter() - started
        if code != 250:
            raise RuntimeError(f"end of DATA: {code}")
    return took


def paced(
    port: int, mails: dict[str, bytes], rate: float, count: int, share: float
) -> list[tuple[str, float]]:
    """``count`` messages at ``rate`` per second (an invoice every 1/share messages).

    Each message's kind and seconds, so a percentile can be told apart by kind.
    """
    every = max(1, round(1 / share))
    start = time.perf_counter() + 0.2
    lock = threading.Lock()
    times: list[tuple[str, float]] = []

    def one(i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        kind = "invoice" if i % every == 0 else "ordinary"
        took = send_one(port, kind, mails[kind])
        with lock:
            times.append((kind, took))

    with ThreadPoolExecutor(max_workers=32) as pool:
        for f in [pool.submit(one, i) for i in range(count)]:
            f.result()
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def run_once(
    config: str, transport: str, args: argparse.Namespace, shared: Shared
) -> list[tuple[str, float]]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{config}-{transport}-", dir=shared.workdir))
    run_dir.chmod(0o755)
    sink = Sink(run_dir)
    milter = MilterProcess(MILTERS[config], run_dir, transport, shared)
    postfix = RelayPostfix(
        run_dir,
        free_port(),
        sink.port,
        shared.authserv_id,
        milter.socket.postfix(),
        32,
        traffic.RECIPIENT,
    )
    mails = {
        kind: (shared.workdir / f"{kind}.eml").read_bytes().replace(b"\n", b"\r\n")
        for kind in SENDERS
    }
    try:
        sink.start()
        milter.start()
        postfix.start()
        port = postfix.smtp_port
        paced(port, mails, args.rate, 50, args.invoice_share)  # warm-up
        start = postfix.log_size()
        times = paced(port, mails, args.rate, args.messages, args.invoice_share)
        warnings = milter_warnings(postfix.log_since(start))
        if warnings:
            raise RuntimeError(f"Postfix skipped the milter: {warnings[:3]}")
        milter.check_alive()
    finally:
        postfix.stop()
        milter.stop()
        sink.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return times


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rate", type=float, default=150.0, help="messages per second")
    p.add_argument("--messages", type=int, default=1500)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--invoice-share", type=float, default=0.2)
    p.add_argument("--configs", default="null,inboxpay")
    p.add_argument("--transports", default="unix,inet")
    p.add_argument("--quiet-wait", type=float, default=20)
    args = p.parse_args(argv)
    configs = args.configs.split(",")
    transports = args.transports.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="inboxpay-latency-"))
    workdir.chmod(0o755)
    mail = traffic.build(workdir)
    dns = start_dns(workdir, mail, 300)
    shared = Shared(workdir, dns.port, traffic.AUTHSERV_ID)
    p50: dict[tuple[str, str], list[float]] = {}
    p99: dict[tuple[str, str], list[float]] = {}
    try:
        cells = [(c, t) for t in transports for c in configs]
        for rep in range(args.runs):
            for config, transport in cells[rep % len(cells) :] + cells[: rep % len(cells)]:
                busy = wait_for_quiet(args.quiet_wait)
                timed = run_once(config, transport, args, shared)
                times = [t for _, t in timed]
                a, b = percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000
                by_kind = {
                    kind: [t for k, t in timed if k == kind] for kind in ("ordinary", "invoice")
                }
                kinds = ", ".join(
                    f"{kind} p50 {percentile(v, 0.5) * 1000:.1f}"
                    f" / p99 {percentile(v, 0.99) * 1000:.1f}"
                    for kind, v in by_kind.items()
                    if v
                )
                p50.setdefault((config, transport), []).append(a)
                p99.setdefault((config, transport), []).append(b)
                print(
                    f"run {rep + 1} {config}-{transport}: p50 {a:.1f} ms, p99 {b:.1f} ms "
                    f"({kinds} ms; {len(times)} messages at {args.rate:.0f}/s; "
                    f"{busy:.0%} busy before)",
                    flush=True,
                )
    finally:
        dns.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nrate {args.rate:.0f} msgs/s, medians over {args.runs} runs")
    for transport in transports:
        for config in configs:
            key = (config, transport)
            line = (
                f"- {config} {transport}: p50 {statistics.median(p50[key]):.1f} ms, "
                f"p99 {statistics.median(p99[key]):.1f} ms"
            )
            base = ("null", transport)
            if config != "null" and base in p99:
                added = [x - y for x, y in zip(p99[key], p99[base], strict=True)]
                line += "; p99 added over the null milter, per run: "
                line += ", ".join(f"{x:+.1f}" for x in added)
                line += f" ms (median {statistics.median(added):+.1f} ms)"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
