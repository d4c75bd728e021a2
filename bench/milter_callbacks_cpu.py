"""CPU per message of the whole milter in-process: the callbacks, as libmilter calls them.

``pipeline_cpu.py`` measures ``pipeline.process`` alone; this drives an
``InboxPayMilter`` through connect, HELO, MAIL, RCPT, every header, the body and end of
message for each message, as libmilter would (one connection per message, as
smtp-source sends them), with a stand-in for libmilter's context that accepts the edits.
So it also counts what the protocol layer adds: the timing of each callback, the
metrics, the log line, the body buffer. The baseline, in the same process, is
``pipeline.process`` on the same messages. Not a test; run by hand:

    .venv/bin/python bench/milter_callbacks_cpu.py [--messages 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import Milter
from joserfc.jwk import OKPKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import traffic
from inboxpay import logs
from inboxpay.card.header import CardSigner
from inboxpay.config import Partner
from inboxpay.dns import StaticResolver, static_record
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Policy
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.filter import InboxPayMilter
from inboxpay.milter.metrics import MilterMetrics
from inboxpay.milter.pipeline import Outcome, Settings, process


class _Context:
    """What InboxPayMilter asks of libmilter's context: macros, and edits it accepts."""

    def __init__(self) -> None:
        self._priv: Any = None

    def getsymval(self, name: str) -> str | None:
        return "4ABC123" if name == "i" else None

    def setpriv(self, priv: Any) -> None:
        self._priv = priv

    def getpriv(self) -> Any:
        return self._priv

    def chgheader(self, *args: Any) -> None:
        pass

    def addheader(self, *args: Any) -> None:
        pass

    def replacebody(self, *args: Any) -> None:
        pass


def _worlds() -> tuple[Callable[[str], None], Callable[[str], None]]:
    """(one message through the callbacks, the same message through pipeline.process)."""
    keys = {s.domain: traffic.new_dkim_key(s.domain, s.selector) for s in traffic.SENDERS}
    resolver = StaticResolver(
        [static_record(name, "TXT", value) for name, value in traffic.zones(keys).txt.items()]
    )
    signer = CardSigner(OKPKey.generate_key("Ed25519", private=True), "bench")
    settings = Settings(traffic.AUTHSERV_ID, signer, b"k" * 32, 86400)
    partner = Partner("xero", "Xero", (traffic.PARTNER_DOMAIN,), (traffic.INVOICE_HOST,))
    policy = Policy(partners=(partner,))
    mail = {
        s.kind: (s, RawMessage.from_bytes(traffic.message(s, keys[s.domain])))
        for s in traffic.SENDERS
    }
    metrics = MilterMetrics()

    def pipeline(facts: MessageFacts) -> Outcome:
        return process(facts, resolver, policy, settings)

    def through_callbacks(kind: str) -> None:
        sender, message = mail[kind]
        milter = InboxPayMilter(pipeline, 10_000_000, metrics)
        milter._setctx(_Context())
        milter._protocol = Milter.P_HDR_LEADSPC
        milter.connect("localhost", 4, ("127.0.0.1", 40000))
        milter.hello(sender.helo)
        milter.envfrom_bytes(f"<{sender.mail_from}>".encode())
        milter.envrcpt_bytes(f"<{traffic.RECIPIENT}>".encode())
        for name, value in message.headers:
            milter.header_bytes(name, value)
        milter.body(message.body)
        milter.eom()
        milter.close()

    def pipeline_only(kind: str) -> None:
        sender, message = mail[kind]
        facts = MessageFacts(
            client_ip="127.0.0.1", client_name="localhost", helo=sender.helo,
            mail_from=sender.mail_from, recipients=[traffic.RECIPIENT], message=message,
        )  # fmt: skip
        pipeline(facts)

    return through_callbacks, pipeline_only


def _cpu_per_message(one: Callable[[str], None], every: int, messages: int, repeat: int) -> float:
    def run(n: int) -> None:
        for i in range(n):
            one("invoice" if every and i % every == 0 else "ordinary")

    run(100)  # warm caches
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run(messages)
        best = min(best, time.process_time() - started)
    return best / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="report the fastest of N runs")
    args = parser.parse_args()
    # The milter's own log setup, its lines thrown away: the log line is part of the cost.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    logs.setup("info")
    callbacks, pipeline = _worlds()
    print(f"CPU per message, best of {args.repeat} x {args.messages} messages (process_time):")
    mixes = (("ordinary mail only", 0), ("99/1 mix", 100), ("80/20 mix", 5), ("invoices only", 1))
    for label, every in mixes:
        whole = _cpu_per_message(callbacks, every, args.messages, args.repeat)
        alone = _cpu_per_message(pipeline, every, args.messages, args.repeat)
        print(
            f"  {label:19} through the callbacks {whole:6.0f} us, pipeline.process alone "
            f"{alone:6.0f} us (the protocol layer adds {whole - alone:4.0f} us)"
        )


if __name__ == "__main__":
    main()
