"""A newcomer's first invoice: `inboxpay init` + `inboxpay send-sample` through Postfix get a card.

The sample sender's SPF, DKIM and DMARC records come from the config's
[[dns.static]] entries, so this needs no zone server: just the MTA and the milter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from inboxpay.card.header import CardVerifier, recipient_hash
from inboxpay.card.keys import kid_of, load_recipient_key, load_signing_key, public_jwk
from inboxpay.config import load
from inboxpay.dev.init import init

from . import checks, rawmime
from .mail import Delivery, wait_for_delivery
from .postfix import PrivatePostfix, milter_warnings
from .procs import accepts_tcp, free_port, process_exited, stop, wait_until
from .world import BOB, RECIPIENTS

pytestmark = pytest.mark.e2e

AUTHSERV = "mx.sample.test"


@pytest.fixture(scope="module")
def dev(e2e_dir: Path) -> Iterator[tuple[Path, PrivatePostfix]]:
    workdir = e2e_dir / "send-sample"
    workdir.mkdir()
    workdir.chmod(0o755)
    milter_port = free_port()
    path = init(workdir / "dev", AUTHSERV, metrics_port=free_port())
    path.write_text(
        path.read_text().replace('"inet:8894@127.0.0.1"', f'"inet:{milter_port}@127.0.0.1"')
    )
    log = workdir / "milter.log"
    with log.open("wb") as out:
        milter = subprocess.Popen(
            [sys.executable, "-m", "inboxpay", "milter", "--config", str(path)],
            stdout=out,
            stderr=out,
        )
    postfix = PrivatePostfix(workdir, free_port(), milter_port, AUTHSERV, RECIPIENTS)
    try:
        wait_until(
            lambda: accepts_tcp("127.0.0.1", milter_port),
            20,
            "dev milter",
            process_exited(milter, log),
        )
        postfix.start()
        yield path, postfix
    finally:
        postfix.stop()
        stop(milter, grace=10.0)


@pytest.mark.parametrize(
    ("markup_format", "kind"),
    [
        ("invoice-jsonld", "invoice"),
        ("action-request", "action"),
        ("signed-action-request", "signed"),
        ("invoice-microdata", "microdata"),
    ],
)
def test_send_sample_gets_a_card_in_each_format(
    dev: tuple[Path, PrivatePostfix], markup_format: str, kind: str
) -> None:
    path, postfix = dev
    start = postfix.log_size()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "inboxpay",
            "send-sample",
            "--config",
            str(path),
            "--to",
            BOB,
            "--smtp",
            f"127.0.0.1:{postfix.smtp_port}",
            "--format",
            markup_format,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    # The queue id comes from Postfix's log: "<queue id>: ... to=<bob@...>".
    def queue_ids() -> list[str]:
        return re.findall(r"([0-9A-F]{6,}): to=<", postfix.log_since(start))

    wait_until(lambda: bool(queue_ids()), 20, "sample delivery")
    queue_id = queue_ids()[0]
    raw = wait_for_delivery(
        postfix.maildir(BOB), queue_id, postfix_log=lambda: postfix.log_since(start)
    )
    d = Delivery(queue_id, BOB, raw)
    assert milter_warnings(postfix.log_since(start)) == []
    assert checks.verdict(d)[0] == "card", checks.where(d)
    cfg = load(path)
    key = load_signing_key(cfg.signing.key_file)
    verifier = CardVerifier([OKPKey.import_key(public_jwk(key, kid_of(key)))])
    claims = checks.card_claims(d, verifier)
    assert claims["invoice"]["partner"] == "sample"
    assert claims["invoice"]["merchant"] == "Wide World Importers"
    assert claims["invoice"]["partner_name"] == "InboxPay Sample Billing"
    assert claims["invoice"]["broker"] == "InboxPay Sample Billing"
    assert claims["auth"]["dkim_domain"] == "sample.inboxpay.test"
    # The format the sample used is the one the milter read.
    html = b"".join(rawmime.html_parts(d.raw))
    assert {"invoice": b'"Invoice"', "action": b'"ActionRequest"'}.get(kind, b"") in html
    assert (b"SignedActionRequest" in html) == (kind == "signed")
    assert (b"itemscope" in html) == (kind == "microdata")
    assert recipient_hash(load_recipient_key(cfg.signing.recipient_key_file), BOB) in claims["rcpt"]
