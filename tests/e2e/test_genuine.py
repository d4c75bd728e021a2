"""Genuine invoices from registered partners get a signed card, and nothing else changes."""

from __future__ import annotations

import json

import pytest

from inboxpay.card.header import recipient_hash

from . import checks, rawmime
from .harness import Mta
from .messages import Invoice, invoice_mail
from .scenarios import forged_card, from_xero, signed_xero_invoice
from .world import ACME_MX, BOB, CAROL

pytestmark = pytest.mark.e2e


def test_genuine_xero_invoice_gets_a_card(mta: Mta) -> None:
    d = from_xero(mta, signed_xero_invoice(mta))[0]
    claims = checks.card_claims(d, mta.card_keys.verifier)
    expected = {
        "partner": "xero",
        "merchant": "Acme Supplies",
        "number": "INV-0042",
        "amount": "70.00",
        "currency": "USD",
        "due": "2027-01-15",
        "url": "https://in.xero.test/view/abc123",
    }
    invoice = claims["invoice"]
    got = {k: invoice.get(k) for k in expected}
    assert got == expected, f"{checks.where(d)} card invoice {invoice}"
    hashes = checks.recipient_hashes(claims)
    assert recipient_hash(mta.card_keys.recipient_key, BOB) in hashes, checks.where(d)
    assert BOB not in json.dumps(claims).lower(), f"{checks.where(d)} card leaks the address"
    html = rawmime.html_parts(d.raw)
    assert any(b"application/ld+json" in h and b"INV-0042" in h for h in html), (
        f"{checks.where(d)} JSON-LD gone from a genuine invoice"
    )


def test_genuine_invoice_keeps_body_and_every_header_line(mta: Mta) -> None:
    sent = signed_xero_invoice(mta)
    d = from_xero(mta, sent)[0]
    checks.our_ar(d)
    checks.assert_body_unchanged(sent, d)
    checks.assert_headers_kept(sent, d)


def test_two_recipients_are_both_in_the_card(mta: Mta) -> None:
    sent = signed_xero_invoice(mta, to=[BOB, CAROL])
    key = mta.card_keys.recipient_key
    for d in from_xero(mta, sent, rcpt_to=[BOB, CAROL]):
        hashes = checks.recipient_hashes(checks.card_claims(d, mta.card_keys.verifier))
        for rcpt in (BOB, CAROL):
            assert recipient_hash(key, rcpt) in hashes, f"{checks.where(d)} no hash for {rcpt}"


def test_merchant_sending_directly_gets_a_card(mta: Mta) -> None:
    invoice = Invoice(number="A-77", url="https://pay.acme.test/i/77", broker=None, amount="12.50")
    mail = invoice_mail(invoice, "Acme Supplies <billing@acme.test>", [BOB])
    d = mta.deliver_one(mta.dkim["acme.test"].sign(mail), ACME_MX, "bounce@acme.test", BOB)
    claims = checks.card_claims(d, mta.card_keys.verifier)
    got = {k: claims["invoice"].get(k) for k in ("partner", "merchant", "number", "amount")}
    assert got == {
        "partner": "acme",
        "merchant": "Acme Supplies",
        "number": "A-77",
        "amount": "12.50",
    }, f"{checks.where(d)} card invoice {claims['invoice']}"


def test_forged_inbound_card_is_replaced_by_ours(mta: Mta) -> None:
    # Added on top after signing, as anyone relaying the mail could.
    sent = f"{checks.CARD}: {forged_card()}\r\n".encode() + signed_xero_invoice(mta)
    d = from_xero(mta, sent)[0]
    claims = checks.card_claims(d, mta.card_keys.verifier)
    assert claims["invoice"].get("amount") == "70.00", f"{checks.where(d)} {claims}"


def test_added_fields_are_written_conventionally(mta: Mta) -> None:
    # The milter negotiates HDR_LEADSPC, so Postfix writes values verbatim: the space is ours.
    d = from_xero(mta, signed_xero_invoice(mta))[0]
    for name in (
        b"Authentication-Results: mx.test.example;",
        b"InboxPay-Verdict: card",
        b"InboxPay-Card: ey",
    ):
        assert b"\n" + name in d.raw, f"{checks.where(d)} no {name!r}"
