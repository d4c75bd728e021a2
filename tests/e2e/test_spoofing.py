"""Payment requests that fail authentication or policy lose their markup and get no card."""

from __future__ import annotations

import pytest

from . import checks
from .harness import Mta
from .messages import Invoice, appended_invoice_part, invoice_mail, notice_mail
from .scenarios import XERO_FROM, from_xero, signed_xero_invoice
from .world import ATTACKER_MX, BOB, ERIN, ROGUE_HOST

pytestmark = pytest.mark.e2e


def test_forged_partner_from_signed_by_attacker(mta: Mta) -> None:
    sent = mta.dkim["attacker.test"].sign(invoice_mail(Invoice(), XERO_FROM, [BOB]))
    d = mta.deliver_one(sent, ATTACKER_MX, "bounce@attacker.test", BOB)
    checks.assert_removed(d, "dkim_fail", "unaligned")
    checks.assert_markup_removed(sent, d)


def test_lookalike_domain_is_not_a_partner(mta: Mta) -> None:
    mail = invoice_mail(Invoice(), "Xero <billing@post-xero.test>", [BOB])
    sent = mta.dkim["post-xero.test"].sign(mail)
    d = mta.deliver_one(sent, ATTACKER_MX, "bounce@post-xero.test", BOB)
    checks.assert_removed(d, "not_partner")
    checks.assert_markup_removed(sent, d)


def test_amount_tampered_after_signing(mta: Mta) -> None:
    original = invoice_mail(Invoice(amount="70.00"), XERO_FROM, [BOB])
    signature = mta.dkim["post.xero.test"].signature(original)
    tampered = original.replace(b"70.00", b"7000.00")
    assert tampered != original
    sent = signature + tampered
    d = from_xero(mta, sent)[0]
    checks.assert_removed(d, "dkim_fail")
    checks.assert_markup_removed(sent, d)


def test_markup_appended_after_body_length_limit(mta: Mta) -> None:
    # The partner signs an ordinary mail with l=; the attacker appends an HTML
    # part with an invoice below the signed length.
    original = notice_mail(XERO_FROM, close=False)
    signed = mta.dkim["post.xero.test"].sign(original, length=True)
    assert b" l=" in signed or b";l=" in signed or b"\tl=" in signed
    evil = Invoice(amount="9999.00", url="https://in.xero.test/view/evil")
    sent = appended_invoice_part(signed, evil)
    d = from_xero(mta, sent)[0]
    checks.assert_removed(d, "dkim_fail")
    checks.assert_markup_removed(sent, d)


def test_two_from_headers(mta: Mta) -> None:
    second_from = b"From: Payments <pay@attacker.test>\r\n"
    sent = second_from + signed_xero_invoice(mta)
    d = from_xero(mta, sent)[0]
    checks.assert_removed(d, "unaligned")
    checks.assert_markup_removed(sent, d)


def test_invoice_url_on_a_foreign_host(mta: Mta) -> None:
    sent = signed_xero_invoice(mta, Invoice(url="https://evil.test/pay"))
    d = from_xero(mta, sent)[0]
    checks.assert_removed(d, "url_not_allowed")
    checks.assert_markup_removed(sent, d)


def test_spf_fail_despite_dkim_pass(mta: Mta) -> None:
    sent = signed_xero_invoice(mta)
    d = from_xero(mta, sent, client=ROGUE_HOST)[0]
    checks.assert_removed(d, "spf_fail")
    checks.assert_markup_removed(sent, d)


def test_recipient_org_with_pay_disabled(mta: Mta) -> None:
    sent = signed_xero_invoice(mta, to=[ERIN])
    d = from_xero(mta, sent, rcpt_to=[ERIN])[0]
    checks.assert_removed(d, "org_disabled")
    checks.assert_markup_removed(sent, d)


def test_invalid_invoice_amount(mta: Mta) -> None:
    sent = signed_xero_invoice(mta, Invoice(amount="-5.00"))
    d = from_xero(mta, sent)[0]
    checks.assert_removed(d, "invalid_invoice")
    checks.assert_markup_removed(sent, d)
