"""The whole message path (facts -> edits) with a static DNS table: no MTA, real crypto."""

from __future__ import annotations

from joserfc.jwk import OKPKey

from inboxpay.card.header import CardVerifier, recipient_hash
from inboxpay.card.keys import public_jwk
from inboxpay.config import DEFAULT_PARTNERS
from inboxpay.dns import StaticResolver
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Action, Policy, Reason
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.pipeline import Settings, process
from tests.support.pipeline import DATA, RKEY, XERO_IP, run, sign

__all__ = ["DATA", "RKEY", "XERO_IP", "run", "sign"]  # other message-path tests use them


def test_genuine_signed_invoice_gets_a_verifiable_card(resolver, dkim_key, signer) -> None:  # type: ignore[no-untyped-def]
    mail = (DATA / "xero_invoice.eml").read_bytes()
    to = b"To: Ana Muller <ana@client.example>\n"
    raw = sign(mail.replace(to, to + b"Cc: bob@client.example\n"), dkim_key[0])
    out = run(raw, resolver, signer, rcpts=("Ana@Client.example", "bob@client.example"))
    assert out.verdict.action is Action.CARD, out.verdict
    appended = dict(out.edits.append)
    assert appended["InboxPay-Verdict"] == "card"
    public = OKPKey.import_key(public_jwk(signer.key, signer.kid))
    claims = CardVerifier([public]).verify(appended["InboxPay-Card"])
    assert claims["invoice"]["partner"] == "xero"
    assert claims["invoice"]["number"] == "INV-0042"
    assert claims["invoice"]["broker"] == "Xero"  # as the markup names it
    assert claims["auth"]["dkim_domain"] == "post.xero.com"
    assert claims["rcpt"] == sorted(
        [recipient_hash(RKEY, "ana@client.example"), recipient_hash(RKEY, "bob@client.example")]
    )
    assert out.edits.body is None  # a card never touches the body
    name, ar = out.edits.insert_top[0]
    assert name == "Authentication-Results"
    assert ar.startswith("mx.example.org;")
    assert "dkim=pass" in ar and "spf=pass" in ar and "dmarc=pass" in ar


def test_spoofed_client_address_removes_only_the_payment_request(
    resolver, dkim_key, signer
) -> None:  # type: ignore[no-untyped-def]
    raw = sign((DATA / "xero_invoice.eml").read_bytes(), dkim_key[0])
    out = run(raw, resolver, signer, ip="203.0.113.5")
    assert out.verdict.reason is Reason.SPF_FAIL
    assert ("InboxPay-Verdict", "removed; reason=spf_fail") in out.edits.append
    assert not any(n == "InboxPay-Card" for n, _ in out.edits.append)
    body, new = RawMessage.from_bytes(raw).body, out.edits.body
    assert new is not None and new != body
    assert b"application/ld+json" in body and b"application/ld+json" not in new
    # Everything before the HTML part, the text part included, is byte-identical.
    html_at = body.index(b"Content-Type: text/html")
    assert new[:html_at] == body[:html_at]


def test_tampered_amount_fails_dkim(resolver, dkim_key, signer) -> None:  # type: ignore[no-untyped-def]
    raw = sign((DATA / "xero_invoice.eml").read_bytes(), dkim_key[0])
    tampered = raw.replace(b'"price": "1,250.00"', b'"price": "9,250.00"')
    assert tampered != raw
    out = run(tampered, resolver, signer)
    assert out.verdict.reason is Reason.DKIM_FAIL


def test_l_tag_append_never_feeds_a_card(resolver, dkim_key, signer) -> None:  # type: ignore[no-untyped-def]
    original = (DATA / "xero_invoice.eml").read_bytes()
    html_at = original.index(b"<!DOCTYPE html>")
    # Sign a body without the markup, then append the markup after signing.
    stripped = original[:html_at] + b"<html><body>hi</body></html>\r\n"
    signed = sign(stripped, dkim_key[0], length=True)
    appended = signed + original[html_at:]
    out = run(appended, resolver, signer)
    assert out.verdict.action is Action.REMOVE
    assert out.verdict.reason is Reason.DKIM_FAIL
    assert "l= leaves part of the body unsigned" in out.edits.insert_top[0][1]


def test_dns_timeout_delivers_without_card(dkim_key, signer) -> None:  # type: ignore[no-untyped-def]
    raw = sign((DATA / "xero_invoice.eml").read_bytes(), dkim_key[0])
    out = run(raw, StaticResolver(failing=["post.xero.com", "s1._domainkey.post.xero.com"]), signer)
    assert out.verdict.action is Action.SKIP
    assert ("InboxPay-Verdict", "skipped; reason=temperror") in out.edits.append
    assert out.edits.body is None  # unchanged apart from our headers
    assert not any(n == "InboxPay-Card" for n, _ in out.edits.append)
    assert "spf=temperror" in out.edits.insert_top[0][1]
    assert "dkim=temperror" in out.edits.insert_top[0][1]


def test_forged_headers_are_deleted_highest_index_first(resolver, signer) -> None:  # type: ignore[no-untyped-def]
    raw = (
        b"Authentication-Results: mx.example.org; dkim=pass\r\n"
        b"InboxPay-Card: forged.1.x\r\n"
        b"Authentication-Results: other.example; spf=pass\r\n"
        b"Authentication-Results: sub.mx.example.org; spf=pass\r\n"
        b"inboxpay-card: forged.2.x\r\n"
        b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n"
    )
    out = run(raw, resolver, signer)
    assert out.verdict.action is Action.PASS
    assert out.edits.delete == (
        ("inboxpay-card", 2),
        ("Authentication-Results", 3),
        ("InboxPay-Card", 1),
        ("Authentication-Results", 1),
    )
    assert out.edits.append == () and out.edits.body is None


def test_authenticated_submission_loses_only_forged_cards_and_results(resolver, signer) -> None:  # type: ignore[no-untyped-def]
    raw = (
        b"InboxPay-Card: forged\r\nAuthentication-Results: mx.example.org; x=y\r\n"
        b"From: a@b.example\r\n\r\nhi\r\n"
    )
    facts = MessageFacts(
        client_ip="198.51.100.1", authenticated=True, message=RawMessage.from_bytes(raw)
    )
    out = process(
        facts, resolver, Policy(DEFAULT_PARTNERS), Settings("mx.example.org", signer, RKEY, 60)
    )
    # RFC 8601 5: results claiming our authserv-id go on every path, trusted senders' too.
    assert out.edits.delete == (("Authentication-Results", 1), ("InboxPay-Card", 1))
    assert out.edits.insert_top == () and out.edits.append == ()
