"""Self-tests of the harness: the test data and checks mean what the e2e tests assume."""

from __future__ import annotations

from pathlib import Path

import dkim
import dns.exception
import pytest

from . import rawmime
from .dnsserver import DnsServer, txt_strings
from .mail import send, wait_for_delivery
from .messages import Invoice, appended_invoice_part, invoice_mail, notice_mail
from .postfix import PrivatePostfix, milter_snippet, milter_warnings
from .procs import free_port
from .scenarios import XERO_BOUNCE, XERO_FROM
from .world import AUTHSERV_ID, BOB, XERO_MX, DkimKey

pytestmark = pytest.mark.e2e


def test_milter_warnings_are_caught() -> None:
    log = (
        "Nov 25 15:29:19 mx postfix/smtpd[6060]: connect from unknown[127.0.0.1]\n"
        "Nov 25 15:29:19 mx postfix/smtpd[6060]: warning: connect to Milter service "
        "inet:127.0.0.1:8899: Connection refused\n"
        "Nov 25 15:29:19 mx postfix/smtpd[6060]: warning: hostname nowhere does not resolve\n"
    )
    assert milter_warnings(log) == [log.splitlines()[1]]


def test_snippet_keeps_everything_but_the_socket() -> None:
    text = milter_snippet(12345)
    assert "\nsmtpd_milters = inet:127.0.0.1:12345\n" in text
    settings = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition("=") for line in text.splitlines())
        if k and not k.startswith("#")
    )
    assert settings["milter_default_action"] == "accept"
    assert settings["non_smtpd_milters"] == "$smtpd_milters"
    assert "i" in settings["milter_end_of_data_macros"].split()
    assert {"i", "{auth_authen}"} <= set(settings["milter_mail_macros"].split())
    assert {"{client_addr}", "{client_name}"} <= set(settings["milter_connect_macros"].split())


def test_long_txt_values_are_split_into_character_strings() -> None:
    parts = txt_strings("x" * 600)
    assert [len(p) for p in parts] == [255, 255, 90]


def _dkim_ok(message: bytes, dns_server: DnsServer) -> bool:
    resolver = dns_server.resolver()

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), "TXT")
        except dns.exception.DNSException:
            return None
        return b"".join(next(iter(answer)).strings)

    return bool(dkim.verify(message, dnsfunc=txt))


def test_test_mail_authenticates_as_the_scenarios_assume(
    dns_server: DnsServer, dkim_keys: dict[str, DkimKey]
) -> None:
    xero = dkim_keys["post.xero.test"]
    genuine = invoice_mail(Invoice(), XERO_FROM, [BOB])
    assert _dkim_ok(xero.sign(genuine), dns_server)
    assert _dkim_ok(dkim_keys["attacker.test"].sign(genuine), dns_server)
    tampered = xero.signature(genuine) + genuine.replace(b"70.00", b"7000.00")
    assert not _dkim_ok(tampered, dns_server)
    # The l= attack is real: plain DKIM verification still passes after the append.
    signed = xero.sign(notice_mail(XERO_FROM, close=False), length=True)
    appended = appended_invoice_part(signed, Invoice(amount="9999.00"))
    assert _dkim_ok(appended, dns_server)
    assert any(b"9999.00" in h for h in rawmime.html_parts(appended))


def test_invoice_mail_has_markup_and_other_parts() -> None:
    mail = invoice_mail(Invoice(), XERO_FROM, [BOB])
    html = rawmime.html_parts(mail)
    assert len(html) == 1 and b'<script type="application/ld+json">' in html[0]
    assert b'"price":"70.00"' in html[0]
    assert [p.content_type for p in rawmime.leaf_parts(mail)] == [
        "text/plain",
        "text/html",
        "application/pdf",
    ]


def test_unreachable_milter_leaves_a_warning(e2e_dir: Path) -> None:
    """The trap the autouse check guards against, shown on a second, milter-less Postfix."""
    workdir = e2e_dir / "no-milter"
    workdir.mkdir()
    workdir.chmod(0o755)
    # Nothing listens on the milter port: Postfix accepts and delivers anyway.
    postfix = PrivatePostfix(workdir, free_port(), free_port(), AUTHSERV_ID, (BOB,))
    try:
        postfix.start()
        queue_id = send(postfix.smtp_port, XERO_MX, XERO_BOUNCE, [BOB], notice_mail(XERO_FROM))
        wait_for_delivery(postfix.maildir(BOB), queue_id)
        assert milter_warnings(postfix.log_since(0)), f"queue id {queue_id}: no warning logged"
    finally:
        postfix.stop()
