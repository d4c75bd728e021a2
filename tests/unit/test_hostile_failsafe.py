"""Hostile mail, fail-open family: the milter never gives up open.

Issue 10 items 4 (any failure ends in the fail-safe path) and 5 (the JSON-LD @id expansion
bomb, and a CPU deadline per message). Through ``pipeline.process`` with real crypto.
"""

from __future__ import annotations

import json
import time

import pytest

from inboxpay.card.header import CardSigner
from inboxpay.deadline import DeadlineExceeded, check, cpu_deadline
from inboxpay.dns import StaticResolver
from inboxpay.invoice import markup
from inboxpay.invoice.removal import NOTICE
from inboxpay.message import RawMessage
from inboxpay.milter import pipeline
from inboxpay.milter.decide import Action, Reason
from inboxpay.milter.pipeline import Outcome
from tests.support.pipeline import run as run_xero

INVOICE = (
    '<script type="application/ld+json">{"@context":"http://schema.org","@type":"Invoice",'
    '"identifier":"INV-1","paymentDueDate":"2027-01-15","url":"https://in.xero.com/v/1",'
    '"provider":{"@type":"Organization","name":"Acme"},"totalPaymentDue":'
    '{"@type":"PriceSpecification","price":"10.00","priceCurrency":"USD"}}</script>'
)
FORGED_HEADERS = (
    b"Authentication-Results: mx.example.org; dkim=pass header.d=post.xero.com\r\n"
    b"InboxPay-Card: forged.card.value\r\n"
    b"InboxPay-Verdict: card\r\n"
)


def hostile_mail(html_parts: list[str]) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + b"\r\n"
        for html in html_parts
    )
    return (
        FORGED_HEADERS + b"From: Xero <billing@post.xero.com>\r\nTo: ana@client.example\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n" + parts + b"--b--\r\n"
    )


def run(raw: bytes, resolver: StaticResolver, signer: CardSigner, deadline: float = 5.0) -> Outcome:
    return run_xero(raw, resolver, signer, cpu_deadline=deadline)


def assert_failed_safe(raw: bytes, out: Outcome) -> None:
    """Forged fields gone, markup neutralised, the verdict says internal_error, no card."""
    assert out.verdict.action is Action.REMOVE and out.verdict.reason is Reason.INTERNAL_ERROR
    assert out.edits.append == (("InboxPay-Verdict", "removed; reason=internal_error"),)
    deleted = {name.lower() for name, _ in out.edits.delete}
    assert deleted == {"authentication-results", "inboxpay-card", "inboxpay-verdict"}
    body = out.edits.body
    assert body is not None and b"application/ld+json" not in body and NOTICE.encode() in body
    original = RawMessage.from_bytes(raw).body
    html_at = original.index(b"--b\r\nContent-Type: text/html")
    assert body[:html_at] == original[:html_at]  # the plain part is kept


# --- item 4: any unexpected exception ------------------------------------------------------


def test_an_exception_in_the_analysis_takes_the_fail_safe_path(
    resolver: StaticResolver, signer: CardSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug nobody found yet")

    monkeypatch.setattr(pipeline, "analyze", broken)
    raw = hostile_mail([INVOICE])
    assert_failed_safe(raw, run(raw, resolver, signer))


def test_an_exception_while_cleaning_takes_the_fail_safe_path(
    resolver: StaticResolver, signer: CardSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ValueError("markup block span lies outside the HTML")

    monkeypatch.setattr(pipeline.removal, "clean_html", broken)
    raw = hostile_mail([INVOICE])
    assert_failed_safe(raw, run(raw, resolver, signer))


def test_when_even_locating_parts_fails_the_body_is_replaced(
    resolver: StaticResolver, signer: CardSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("walk failed")

    monkeypatch.setattr(pipeline, "analyze", broken)
    monkeypatch.setattr(pipeline, "scan", broken)
    out = run(hostile_mail([INVOICE]), resolver, signer)
    assert out.verdict.reason is Reason.INTERNAL_ERROR
    assert out.edits.body == NOTICE.encode() + b"\r\n"


def test_mail_without_html_keeps_its_body_on_the_fail_safe_path(
    resolver: StaticResolver, signer: CardSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "analyze", lambda *a: 1 / 0)
    raw = FORGED_HEADERS + b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n"
    out = run(raw, resolver, signer)
    assert out.verdict.reason is Reason.INTERNAL_ERROR
    assert out.edits.body is None
    assert len(out.edits.delete) == 3


# --- item 5: the @id expansion bomb and the CPU deadline -----------------------------------


def id_bomb(nodes: int, refs: int) -> str:
    """An @graph whose every node refers ``refs`` times to the next (grows as refs**depth)."""
    graph = [
        {"@id": f"n{i}", "@type": "Invoice", "x": [{"@id": f"n{i + 1}"}] * refs}
        for i in range(nodes)
    ]
    doc = json.dumps({"@context": "http://schema.org", "@graph": graph}, separators=(",", ":"))
    return f'<script type="application/ld+json">{doc}</script>'


def test_the_id_expansion_bomb_is_reported_unread_not_expanded() -> None:
    bomb = id_bomb(5, 50)
    assert len(bomb) < 4096  # the size of the review's message
    blocks = markup.find_payment_markup(bomb)
    # Resolving would make 50**4 nodes; past the cap the block is reported with no data.
    assert [(b.start, b.end, b.data) for b in blocks] == [(0, len(bomb), {})]


def test_a_json_ld_block_past_the_size_cap_is_reported_unread() -> None:
    padding = "x" * markup.MAX_JSON_BYTES
    block = f'<script type="application/ld+json">{{"@type":"Invoice","p":"{padding}"}}</script>'
    [found] = markup.find_payment_markup(block)
    assert found.data == {}


def test_the_bomb_in_a_message_is_removed(resolver: StaticResolver, signer: CardSigner) -> None:
    raw = hostile_mail([id_bomb(5, 50)])
    out = run(raw, resolver, signer)
    assert out.verdict.action is Action.REMOVE
    assert out.edits.body is not None and b"@graph" not in out.edits.body


def test_a_message_past_its_cpu_deadline_takes_the_fail_safe_path(
    resolver: StaticResolver, signer: CardSigner
) -> None:
    raw = hostile_mail([INVOICE] * 90)
    assert run(raw, resolver, signer).verdict.reason is Reason.DKIM_FAIL  # the control
    out = run(raw, resolver, signer, deadline=0.001)
    assert_failed_safe(raw, out)
    assert out.edits.body is not None and b"INV-1" not in out.edits.body


def test_the_deadline_counts_cpu_not_waiting() -> None:
    with cpu_deadline(0.05):
        time.sleep(0.1)  # past the wall-clock mark, with almost no CPU used
        check()  # waiting (for DNS, for the GIL) does not count
        started = time.thread_time()
        with pytest.raises(DeadlineExceeded):
            while time.thread_time() - started < 1.0:
                check()
