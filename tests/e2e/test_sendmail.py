"""The milter behind a real Sendmail, attached with config/sendmail/inboxpay.mc.

Sendmail has no XCLIENT, so the milter sees the real source address of the
test's SMTP connection. Each sending host binds its own loopback address
(127.0.0.0/8 is all local), and a private DNS world publishes SPF records for
those addresses; everything else (DKIM keys, partners) is the session's world.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inboxpay.card.header import recipient_hash

from . import checks, rawmime
from .dnsserver import DnsServer
from .messages import Invoice, invoice_mail
from .milterproc import MilterProcess
from .procs import free_port
from .scenarios import XERO_BOUNCE, XERO_FROM
from .sendmail import PrivateSendmail, SendmailClient, SendmailMta
from .world import AUTHSERV_ID, BOB, RECIPIENTS, DkimKey, zones

pytestmark = pytest.mark.e2e

XERO_HOST = SendmailClient(addr="127.0.0.10", helo="mail.post.xero.test")
ATTACKER_HOST = SendmailClient(addr="127.0.0.66", helo="mx.attacker.test")
ROGUE_HOST = SendmailClient(addr="127.0.0.99", helo="rogue.example.net")
LOCAL_DOMAINS = sorted({address.rsplit("@", 1)[1] for address in RECIPIENTS})


def _workdir(e2e_dir: Path, name: str) -> Path:
    path = e2e_dir / name
    path.mkdir()
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def sendmail_dir(e2e_dir: Path) -> Path:
    return _workdir(e2e_dir, "sendmail")


@pytest.fixture(scope="module")
def loopback_dns(sendmail_dir: Path, dkim_keys: dict[str, DkimKey]) -> Iterator[DnsServer]:
    world = zones(dkim_keys)
    world.txt["post.xero.test"] = f"v=spf1 ip4:{XERO_HOST.addr} -all"
    world.txt["attacker.test"] = f"v=spf1 ip4:{ATTACKER_HOST.addr} -all"
    server = DnsServer(sendmail_dir, free_port(), world)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sendmail_mta(
    sendmail_dir: Path, loopback_dns: DnsServer, dkim_keys: dict[str, DkimKey]
) -> Iterator[SendmailMta]:
    milter = MilterProcess(sendmail_dir, free_port(), AUTHSERV_ID, loopback_dns.port)
    sendmail = PrivateSendmail(
        sendmail_dir, free_port(), f"inet:{milter.port}@127.0.0.1", AUTHSERV_ID, LOCAL_DOMAINS
    )
    try:
        card_keys = milter.start()
        sendmail.start()
        yield SendmailMta(sendmail, card_keys, dkim_keys)
        milter.check_alive()
    finally:
        sendmail.stop()
        milter.stop()


def _xero_invoice(mta: SendmailMta) -> bytes:
    return mta.dkim["post.xero.test"].sign(invoice_mail(Invoice(), XERO_FROM, [BOB]))


def test_generated_cf_carries_the_snippet(sendmail_mta: SendmailMta) -> None:
    cf = (sendmail_mta.sendmail.paths.etc / "sendmail.cf").read_text("utf-8")
    socket = sendmail_mta.sendmail.milter_socket
    assert f"Xinboxpay, S={socket}, T=C:10s;S:30s;R:30s;E:60s\n" in cf, "no milter line"
    assert "O InputMailFilters=inboxpay\n" in cf
    assert "{client_addr}, {client_name}\n" in cf.split("O Milter.macros.connect=")[1]
    assert "O Milter.macros.envfrom=i, {auth_type}, {auth_authen}," in cf
    assert "O Milter.macros.eom={msg_id}, i\n" in cf


def test_genuine_invoice_through_sendmail_gets_a_card(sendmail_mta: SendmailMta) -> None:
    sent = _xero_invoice(sendmail_mta)
    d = sendmail_mta.deliver_one(sent, XERO_HOST, XERO_BOUNCE, BOB)
    claims = checks.card_claims(d, sendmail_mta.card_keys.verifier)
    invoice = claims["invoice"]
    got = {k: invoice.get(k) for k in ("partner", "merchant", "number", "amount", "currency")}
    assert got == {
        "partner": "xero",
        "merchant": "Acme Supplies",
        "number": "INV-0042",
        "amount": "70.00",
        "currency": "USD",
    }, f"{checks.where(d)} card invoice {invoice}"
    key = sendmail_mta.card_keys.recipient_key
    assert recipient_hash(key, BOB) in checks.recipient_hashes(claims), checks.where(d)
    ar = checks.our_ar(d)
    for result in ("spf=pass", "dkim=pass"):
        assert result in ar, f"{checks.where(d)} {checks.AR}: {ar}"
    checks.assert_body_unchanged(sent, d)
    checks.assert_headers_kept(sent, d)


def test_spoofed_invoice_through_sendmail_is_removed(sendmail_mta: SendmailMta) -> None:
    # Xero's From, signed by the attacker's own (valid) domain, from the attacker's host.
    sent = sendmail_mta.dkim["attacker.test"].sign(invoice_mail(Invoice(), XERO_FROM, [BOB]))
    d = sendmail_mta.deliver_one(sent, ATTACKER_HOST, "bounce@attacker.test", BOB)
    checks.assert_removed(d, "dkim_fail", "unaligned")
    checks.assert_markup_removed(sent, d)
    checks.our_ar(d)


def test_sendmail_hands_over_the_real_client_address(sendmail_mta: SendmailMta) -> None:
    # The genuine mail from an address outside post.xero.test's SPF record.
    sent = _xero_invoice(sendmail_mta)
    d = sendmail_mta.deliver_one(sent, ROGUE_HOST, XERO_BOUNCE, BOB)
    checks.assert_removed(d, "spf_fail")
    ar = checks.our_ar(d)
    assert "spf=fail" in ar, f"{checks.where(d)} {checks.AR}: {ar}"


def test_mail_is_delivered_untouched_when_the_milter_is_down(
    e2e_dir: Path, sendmail_mta: SendmailMta
) -> None:
    # No F= flag in the snippet: a milter that refuses connections is skipped, not fatal.
    workdir = _workdir(e2e_dir, "sendmail-no-milter")
    dead = f"inet:{free_port()}@127.0.0.1"  # nothing listens there
    sendmail = PrivateSendmail(workdir, free_port(), dead, AUTHSERV_ID, LOCAL_DOMAINS)
    sendmail.start()
    try:
        mta = SendmailMta(sendmail, sendmail_mta.card_keys, sendmail_mta.dkim)
        sent = _xero_invoice(mta)
        d = mta.deliver_one(sent, XERO_HOST, XERO_BOUNCE, BOB)
    finally:
        sendmail.stop()
    for name in (checks.CARD, checks.VERDICT):
        assert rawmime.values(d.raw, name) == [], f"{checks.where(d)} has {name}"
    assert not any(checks.is_ours(v) for v in rawmime.values(d.raw, checks.AR)), checks.where(d)
    checks.assert_body_unchanged(sent, d)
    checks.assert_headers_kept(sent, d)
