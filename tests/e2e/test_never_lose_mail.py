"""Never lose mail: huge, malformed, deeply nested or unresolvable mail is still delivered.

Nothing is rejected or held for a payment reason: at worst a message arrives without a
card, unchanged apart from our headers. Two extra milter processes (each with its own
Postfix) run here besides the session's: one with a small ``max_message_bytes`` and an
internal network, one whose DNS server never answers.
"""

from __future__ import annotations

import base64
import os
import smtplib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inboxpay.invoice.removal import NOTICE

from . import checks, rawmime
from .dnsserver import DnsServer
from .harness import Instance, Mta, private_instance
from .mail import Client, Delivery, SmtpError, wait_for_delivery, xclient_args
from .messages import (
    CRLF,
    Invoice,
    crlf,
    entity,
    headers,
    html_part,
    invoice_mail,
    message,
    multipart,
    notice_mail,
)
from .milterproc import CardKeys, MilterProcess
from .postfix import milter_warnings
from .procs import free_port
from .scenarios import XERO_BOUNCE, XERO_FROM, forged_card, from_xero, signed_xero_invoice
from .world import AUTHSERV_ID, BOB, XERO_MX, DkimKey

pytestmark = pytest.mark.e2e

LIMIT = 1024 * 1024  # [milter] max_message_bytes of the "limited" milter
INTERNAL_NET = "10.20.0.0/16"
INTERNAL_HOST = Client(
    addr="10.20.30.40", helo="app.corp.example.test", name="app.corp.example.test"
)
DNS_TIMEOUT = 1.0  # [dns] timeout of the milter whose DNS never answers
DNS_BUDGET = 2.0  # its [dns] message_budget
# Postfix's milter_command_timeout in the shipped snippet (content timeout is 60 s).
POSTFIX_MILTER_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def limited(
    e2e_dir: Path, dns_server: DnsServer, dkim_keys: dict[str, DkimKey]
) -> Iterator[Instance]:
    """A milter that examines at most 1 MiB and trusts ``INTERNAL_NET``."""
    with private_instance(
        e2e_dir / "limited",
        dns_server.port,
        dkim_keys,
        milter={"max_message_bytes": LIMIT, "internal_networks": [INTERNAL_NET]},
    ) as instance:
        yield instance


@pytest.fixture(scope="module")
def silent_dns() -> Iterator[int]:
    """A loopback UDP port that receives DNS queries and never answers them."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", port))
        yield port


@pytest.fixture(scope="module")
def no_dns(e2e_dir: Path, silent_dns: int, dkim_keys: dict[str, DkimKey]) -> Iterator[Instance]:
    """A milter whose only nameserver never answers, with a small per-message DNS budget."""
    with private_instance(
        e2e_dir / "no-dns",
        silent_dns,
        dkim_keys,
        dns={"timeout": DNS_TIMEOUT, "message_budget": DNS_BUDGET},
    ) as instance:
        yield instance


def deliver_checked(
    instance: Instance, sent: bytes, client: Client = XERO_MX, mail_from: str = XERO_BOUNCE
) -> Delivery:
    """Deliver through a private instance; fail if Postfix skipped its milter or it died."""
    start = instance.mta.postfix.log_size()
    d = instance.mta.deliver_one(sent, client, mail_from, BOB)
    warnings = milter_warnings(instance.mta.postfix.log_since(start))
    assert warnings == [], f"{checks.where(d)} Postfix skipped the milter: {warnings}"
    instance.milter.check_alive()
    return d


def with_attachment(mail: bytes, size: int) -> bytes:
    """``mail`` (multipart/mixed on top) with a base64 attachment of ``size`` random bytes."""
    marker = b'boundary="'
    start = mail.index(marker) + len(marker)
    b = mail[start : mail.index(b'"', start)]
    data = base64.encodebytes(os.urandom(size)).replace(b"\n", CRLF)
    part = (
        b'Content-Type: application/octet-stream; name="ledger.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data
    )
    close = b"--" + b + b"--" + CRLF
    assert mail.endswith(close)
    return mail[: -len(close)] + b"--" + b + CRLF + part + close


def assert_untouched_but_forged_card(sent: bytes, d: Delivery) -> None:
    """Internal mail: the forged card and results are gone, nothing else added or changed."""
    checks.assert_no_card(d)
    checks.assert_body_unchanged(sent, d)
    ours = [v for v in rawmime.values(d.raw, checks.AR) if checks.is_ours(v)]
    assert ours == [], f"{checks.where(d)} internal mail got our {checks.AR}: {ours}"
    verdicts = rawmime.values(d.raw, checks.VERDICT)
    assert verdicts == [], f"{checks.where(d)} internal mail got a verdict: {verdicts}"
    added = checks.added_fields(sent, d)
    assert added == [], f"{checks.where(d)} fields added to internal mail: {added}"
    # RFC 8601 5: results that claim our authserv-id go whoever sent them.
    forged = (b"InboxPay-Card:", FORGED_AR.encode())
    kept = [line for line in rawmime.header_lines(sent) if not line.startswith(forged)]
    delivered = set(rawmime.header_lines(d.raw))
    missing = [line for line in kept if line not in delivered]
    assert missing == [], f"{checks.where(d)} header lines of internal mail lost: {missing}"


FORGED_AR = f"{checks.AR}: {AUTHSERV_ID}; dkim=pass header.d=post.xero.test"


def forged_internal_invoice() -> bytes:
    """Invoice markup, a forged card and forged results, as an internal sender could send."""
    forged = [f"{checks.CARD}: {forged_card()}", FORGED_AR]
    mail = invoice_mail(Invoice(), "Alice <alice@example.test>", [BOB], forged)
    assert rawmime.values(mail, checks.CARD), "test mail lacks the forged card"
    return mail


# --- size, encoding and structure ---------------------------------------------------------


def test_message_larger_than_limit_is_not_authenticated_but_loses_its_markup(
    limited: Instance,
) -> None:
    sent = limited.mta.dkim["post.xero.test"].sign(
        with_attachment(invoice_mail(Invoice(), XERO_FROM, [BOB]), 3 * 1024 * 1024)
    )
    assert len(sent) > 3 * LIMIT
    d = deliver_checked(limited, sent)
    checks.assert_headers_kept(sent, d)
    checks.assert_no_card(d)
    assert checks.verdict(d) == ("skipped", {"reason": "too_large"}), checks.where(d)
    checks.no_ar_of_ours(d)  # no card possible: not authenticated
    # Too large to authenticate, so no card: the request is cut out, the rest (the
    # attachment included) arrives byte for byte.
    checks.assert_markup_removed(sent, d)
    # Past 1 MiB the milter spooled the body to disk; memory stays bounded.
    rss = rss_kib(limited.milter.pid)
    assert rss < 200 * 1024, f"{checks.where(d)} milter VmRSS {rss} kB"


def test_non_utf8_header_bytes_are_kept_and_the_invoice_still_authenticates(mta: Mta) -> None:
    mail = invoice_mail(
        Invoice(number="INV-8BIT"), "Caf\u00e9 Xero <billing@post.xero.test>", [BOB]
    )
    mail = mail.replace("Caf\u00e9".encode(), b"Caf\xe9", 1)  # raw latin-1 in the display name
    mail = mail.replace(b"\r\nSubject: ", b"\r\nSubject: Rechnung f\xfcr M\xe4rz \xa4 ", 1)
    head = rawmime.split(mail)[0]
    assert b"From: Caf\xe9 Xero" in head and b"f\xfcr M\xe4rz" in head
    sent = mta.dkim["post.xero.test"].sign(mail)
    d = from_xero(mta, sent)[0]
    checks.assert_body_unchanged(sent, d)
    checks.assert_headers_kept(sent, d)  # the 8-bit bytes arrive exactly as sent
    claims = checks.card_claims(d, mta.card_keys.verifier)
    assert claims["invoice"].get("number") == "INV-8BIT", f"{checks.where(d)} {claims}"


def nested_invoice(depth: int) -> bytes:
    """An invoice's HTML part inside ``depth`` nested multipart/mixed entities."""
    html = crlf(
        b"<html><head>\n"
        + Invoice().script().encode("utf-8")
        + b"\n</head><body><p>Invoice INV-0042</p></body></html>\n"
    )
    part = html_part(html)
    for _ in range(depth):
        part = entity(multipart("mixed", [part]))
    head = headers(XERO_FROM, [BOB], "Invoice INV-0042, deeply nested")
    return message(head, multipart("mixed", [part]))


def test_deeply_nested_multipart_is_delivered_and_the_milter_lives_on(mta: Mta) -> None:
    sent = mta.dkim["post.xero.test"].sign(nested_invoice(200))
    assert sent.count(b"Content-Type: multipart/mixed") == 201
    d = from_xero(mta, sent)[0]
    checks.assert_headers_kept(sent, d)
    checks.assert_no_card(d)
    checks.no_ar_of_ours(d)  # no card possible: not authenticated
    # The invoice lies past the MIME depth examined: the trace says so, and what could not
    # be walked is replaced by a notice part, so its markup reaches nobody.
    assert checks.verdict(d) == ("skipped", {"reason": "too_complex"}), checks.where(d)
    body = rawmime.split(d.raw)[1]
    assert b"application/ld+json" not in body and NOTICE.encode() in body, checks.where(d)
    assert body.count(b"Content-Type: multipart/mixed") == 100  # the walked levels stay
    # The milter still serves the next message in full.
    after = from_xero(mta, signed_xero_invoice(mta))[0]
    checks.card_claims(after, mta.card_keys.verifier)


# --- DNS ------------------------------------------------------------------------------------


def test_dns_timeout_delivers_without_card_within_the_budget(no_dns: Instance) -> None:
    sent = signed_xero_invoice(no_dns.mta)
    started = time.monotonic()
    d = deliver_checked(no_dns, sent)
    elapsed = time.monotonic() - started
    value = checks.our_ar(d)
    assert "spf=temperror" in value, f"{checks.where(d)} {value}"
    assert "dkim=temperror" in value, f"{checks.where(d)} {value}"
    checks.assert_no_card(d)
    checks.assert_headers_kept(sent, d)
    checks.assert_body_unchanged(sent, d)  # a DNS failure decides nothing: no removal either
    assert b"\nInboxPay-Verdict: skipped; reason=temperror" in d.raw, checks.where(d)
    # The DNS budget bounds the whole message; queueing and delivery add well under a second.
    assert DNS_BUDGET - 0.5 < elapsed < DNS_BUDGET + 3.0, f"{checks.where(d)} took {elapsed:.1f} s"
    assert elapsed < POSTFIX_MILTER_TIMEOUT / 4, f"{checks.where(d)} took {elapsed:.1f} s"


# --- threads and memory ---------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text("ascii")
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def tree(pid: int) -> list[int]:
    """``pid`` and its children: the milter's workers ([milter] workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text("ascii").split()
    return [pid, *(int(c) for c in children)]


def threads_of(pid: int) -> int:
    return sum(int(proc_status(p)["Threads"]) for p in tree(pid))


def rss_kib(pid: int) -> int:
    return sum(int(proc_status(p)["VmRSS"].split()[0]) for p in tree(pid))


def _expect(reply: tuple[int, bytes], ok: int, step: str) -> None:
    if reply[0] != ok:
        raise SmtpError(f"{step}: {reply[0]} {reply[1].decode('utf-8', 'replace')}")


def open_session(port: int, client: Client) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="harness.test", timeout=60)
    _expect(smtp.ehlo(), 250, "EHLO")
    _expect(smtp.docmd("XCLIENT", xclient_args(client)), 220, "XCLIENT")
    _expect(smtp.ehlo(client.helo), 250, "EHLO after XCLIENT")
    return smtp


def send_in_session(smtp: smtplib.SMTP, mail: bytes) -> str:
    _expect(smtp.mail(XERO_BOUNCE), 250, "MAIL")
    _expect(smtp.rcpt(BOB), 250, "RCPT")
    code, reply = smtp.data(mail)
    _expect((code, reply), 250, "DATA")
    return reply.decode("ascii", "replace").rsplit(" ", 1)[-1]


def connection(port: int, mails: Sequence[bytes], rset_first: bool) -> list[str]:
    """One SMTP session: maybe a transaction abandoned with RSET, then ``mails``."""
    smtp = open_session(port, XERO_MX)
    try:
        if rset_first:
            _expect(smtp.mail(XERO_BOUNCE), 250, "MAIL")
            _expect(smtp.rcpt(BOB), 250, "RCPT")
            _expect(smtp.rset(), 250, "RSET")
        queue_ids = [send_in_session(smtp, m) for m in mails]
        smtp.quit()
        return queue_ids
    finally:
        smtp.close()


def dropped(port: int, mail: bytes, in_data: bool) -> None:
    """A session whose client vanishes: mid-DATA (before the final dot) or after RCPT."""
    smtp = open_session(port, XERO_MX)
    try:
        _expect(smtp.mail(XERO_BOUNCE), 250, "MAIL")
        _expect(smtp.rcpt(BOB), 250, "RCPT")
        if in_data:
            _expect(smtp.docmd("DATA"), 354, "DATA")
            assert smtp.sock is not None
            smtp.sock.sendall(mail[: len(mail) // 2])
    finally:
        smtp.close()  # no QUIT, no final dot: the connection just drops


class ThreadWatch:
    """Samples a process's thread count in the background, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = self.peak = threads_of(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, threads_of(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> ThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def settle(self, slack: int = 2, timeout: float = 10.0) -> int:
        """The thread count once it is back within ``slack`` of the baseline (or at timeout)."""
        deadline = time.monotonic() + timeout
        while threads_of(self.pid) > self.baseline + slack and time.monotonic() < deadline:
            time.sleep(0.1)
        return threads_of(self.pid)


def test_no_thread_leak_and_bounded_memory(
    mta: Mta, milter: tuple[MilterProcess, CardKeys]
) -> None:
    pid = milter[0].pid
    invoice = signed_xero_invoice(mta)
    notice = mta.dkim["post.xero.test"].sign(notice_mail(XERO_FROM))
    port = mta.postfix.smtp_port
    batches = [[invoice, notice, invoice, notice, invoice] for _ in range(6)]
    with ThreadWatch(pid) as watch, ThreadPoolExecutor(max_workers=3) as pool:
        sessions = [pool.submit(connection, port, b, i % 2 == 0) for i, b in enumerate(batches)]
        drops = [pool.submit(dropped, port, invoice, i % 3 != 0) for i in range(6)]
        queue_ids = [q for s in sessions for q in s.result()]
        for f in drops:
            f.result()
    assert len(queue_ids) == 30
    for queue_id, sent in zip(queue_ids, [m for b in batches for m in b], strict=True):
        raw = wait_for_delivery(mta.postfix.maildir(BOB), queue_id)
        d = Delivery(queue_id, BOB, raw)
        checks.assert_body_unchanged(sent, d)
        if sent is invoice:
            checks.our_ar(d)
            checks.card_claims(d, mta.card_keys.verifier)
        else:
            checks.no_ar_of_ours(d)  # no markup: not authenticated
            checks.assert_no_card(d)
    now = watch.settle()
    assert now <= watch.baseline + 2, (
        f"milter pid {pid}: {watch.baseline} threads before, {watch.peak} at most, {now} after"
    )
    rss = rss_kib(pid)
    assert rss < 200 * 1024, f"milter pid {pid}: VmRSS {rss} kB"


def test_no_thread_leak_when_dns_times_out(no_dns: Instance) -> None:
    """Messages stuck in DNS at once occupy threads; afterwards the count comes back down."""
    pid = no_dns.milter.pid
    sent = signed_xero_invoice(no_dns.mta)
    port = no_dns.mta.postfix.smtp_port
    # libmilter runs sessions on a pool of threads that grows only when every pool thread
    # is busy; with [milter] workers the messages are shared out: enough to grow each pool.
    with ThreadWatch(pid) as watch, ThreadPoolExecutor(max_workers=8) as pool:
        sessions = [pool.submit(connection, port, [sent], False) for _ in range(8)]
        queue_ids = [q for s in sessions for q in s.result()]
    # The sampler does see the threads of concurrent messages: the count below means something.
    assert watch.peak > watch.baseline, f"milter pid {pid}: {watch.peak} threads at most"
    for queue_id in queue_ids:
        d = Delivery(queue_id, BOB, wait_for_delivery(no_dns.mta.postfix.maildir(BOB), queue_id))
        assert "spf=temperror" in checks.our_ar(d), checks.where(d)
    now = watch.settle()
    assert now <= watch.baseline + 2, (
        f"milter pid {pid}: {watch.baseline} threads before, {watch.peak} at most, {now} after"
    )


# --- trusted senders ------------------------------------------------------------------------


def test_authenticated_submission_passes_through_but_loses_forged_cards(mta: Mta) -> None:
    # XCLIENT LOGIN sets the SASL login name that Postfix hands the milter as {auth_authen}.
    sent = forged_internal_invoice()
    sender = Client(addr="198.51.100.7", helo="laptop.example.test", login="alice")
    d = mta.deliver_one(sent, sender, "alice@example.test", BOB)
    assert_untouched_but_forged_card(sent, d)
    # The control: the same mail from the same client without a login is checked.
    anonymous = Client(addr=sender.addr, helo=sender.helo)
    d = mta.deliver_one(sent, anonymous, "alice@example.test", BOB)
    checks.no_ar_of_ours(d)  # removed before any DNS
    checks.assert_removed(d, "not_partner")


def test_internal_network_passes_through_but_loses_forged_cards(limited: Instance) -> None:
    sent = forged_internal_invoice()
    d = deliver_checked(limited, sent, INTERNAL_HOST, "alice@example.test")
    assert_untouched_but_forged_card(sent, d)


def test_same_mail_from_outside_the_internal_network_is_checked(limited: Instance) -> None:
    """The control for the test above: the same milter does check other clients."""
    sent = forged_internal_invoice()
    outsider = Client(addr="10.21.0.1", helo="app.corp.example.test")
    d = deliver_checked(limited, sent, outsider, "alice@example.test")
    checks.no_ar_of_ours(d)  # removed before any DNS
    checks.assert_removed(d, "not_partner")
