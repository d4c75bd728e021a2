"""CPU per message of the milter's message path, in-process, without an MTA.

Runs ``pipeline.process`` on the milter benchmark's traffic (80% ordinary signed
HTML mail, 20% signed partner invoices; keys and DNS from bench/traffic.py, DNS
answered from a static table as a warm cache would) and prints microseconds of
CPU per message. The baseline, in the same process, is the same path with dkimpy's
own pure-Python RSA and per-message key parsing (``inboxpay.auth.dkim_accel``
switched off), so the ratio shows what that module buys. ``--profile`` prints the
cProfile top functions. Not a test; run by hand:

    .venv/bin/python bench/pipeline_cpu.py [--messages 300] [--repeat 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dkim
from joserfc.jwk import OKPKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import traffic
from inboxpay.auth import dkim_accel
from inboxpay.card.header import CardSigner
from inboxpay.config import Partner
from inboxpay.dns import StaticResolver, static_record
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Action, Policy
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.pipeline import Settings, process


def _world(mode: str = "payment", every: int = 5) -> Callable[[int], None]:
    """The message path on the traffic, one invoice in ``every`` messages (0: none)."""
    keys = {s.domain: traffic.new_dkim_key(s.domain, s.selector) for s in traffic.SENDERS}
    resolver = StaticResolver(
        [static_record(name, "TXT", value) for name, value in traffic.zones(keys).txt.items()]
    )
    key = OKPKey.generate_key("Ed25519", private=True)
    settings = Settings(
        traffic.AUTHSERV_ID,
        CardSigner(key, "bench"),
        b"k" * 32,
        86400,
        authentication_results=mode,
    )
    partner = Partner("xero", "Xero", (traffic.PARTNER_DOMAIN,), (traffic.INVOICE_HOST,))
    policy = Policy(partners=(partner,), orgs={}, alignment="relaxed", require_spf_pass=True)
    mail = {s.kind: (s, traffic.message(s, keys[s.domain])) for s in traffic.SENDERS}

    def one(i: int) -> Action:
        invoice = every > 0 and i % every == 0
        sender, raw = mail["invoice" if invoice else "ordinary"]
        facts = MessageFacts(
            client_ip="127.0.0.1", client_name="localhost", helo=sender.helo,
            mail_from=sender.mail_from,
        )  # fmt: skip
        facts.recipients.append(traffic.RECIPIENT)
        facts.message = RawMessage.from_bytes(raw)
        return process(facts, resolver, policy, settings).verdict.action

    # The traffic must do what the benchmark says: invoices earn a card, the rest pass.
    assert one(1) is Action.PASS, "bench world is broken"
    assert every == 0 or one(0) is Action.CARD, "bench world is broken"

    def run(n: int) -> None:
        for i in range(n):
            one(i)

    return run


def _cpu_per_message(run: Callable[[int], None], messages: int, repeat: int) -> float:
    run(20)  # warm caches
    best = min(_timed(run, messages) for _ in range(repeat))
    return best / messages * 1e6


def _timed(run: Callable[[int], None], messages: int) -> float:
    started = time.process_time()
    run(messages)
    return time.process_time() - started


def _without_accel(run: Callable[[int], None], messages: int, repeat: int) -> float:
    dkim.RSASSA_PKCS1_v1_5_verify = dkim_accel._PURE_PYTHON
    dkim.evaluate_pk = dkim_accel._EVALUATE_PK
    try:
        return _cpu_per_message(run, messages, repeat)
    finally:
        dkim_accel.install()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7, help="report the fastest of N runs")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    run = _world()
    dkim_accel.install()
    fast = _cpu_per_message(run, args.messages, args.repeat)
    slow = _without_accel(run, args.messages, args.repeat)
    print(f"pipeline.process, {args.messages} messages (80% ordinary, 20% invoices), best of")
    print(f"{args.repeat} runs, CPU per message:")
    print(f"  dkimpy's own RSA and key parsing (baseline): {slow:7.0f} us")
    print(f"  with inboxpay.auth.dkim_accel:               {fast:7.0f} us  ({fast / slow:.2f}x)")
    # What authenticating only what could earn a card saves, in the same process:
    # authentication_results = "all" (every message checked) is the baseline.
    print("authentication_results, CPU per message (best of the runs):")
    for label, every in (("80/20 mix", 5), ("99/1 mix", 100), ("ordinary mail only", 0)):
        all_ = _cpu_per_message(_world("all", every), args.messages, args.repeat)
        payment = _cpu_per_message(_world("payment", every), args.messages, args.repeat)
        print(f"  {label:20} all {all_:7.0f} us, payment {payment:7.0f} us ({payment / all_:.2f}x)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, args.messages)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
