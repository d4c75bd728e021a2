"""Ready-made senders: who sends what from where, signed by whom."""

from __future__ import annotations

from collections.abc import Sequence

from joserfc.jwk import OKPKey

from inboxpay.card.header import CardSigner

from .harness import Mta
from .mail import Client, Delivery
from .messages import Invoice, invoice_mail, notice_mail
from .world import BOB, XERO_MX

XERO_FROM = "Xero on behalf of Acme Supplies <billing@post.xero.test>"
XERO_BOUNCE = "bounce@post.xero.test"


def signed_xero_invoice(
    mta: Mta,
    invoice: Invoice | None = None,
    to: Sequence[str] = (BOB,),
    extra_headers: Sequence[str] = (),
) -> bytes:
    """A genuine Xero invoice, signed by post.xero.test."""
    mail = invoice_mail(invoice or Invoice(), XERO_FROM, to, extra_headers)
    return mta.dkim["post.xero.test"].sign(mail)


def signed_xero_notice(mta: Mta, extra_headers: Sequence[str] = ()) -> bytes:
    """An ordinary Xero mail with no payment request, signed by post.xero.test."""
    return mta.dkim["post.xero.test"].sign(notice_mail(XERO_FROM, extra_headers=extra_headers))


def from_xero(
    mta: Mta, message: bytes, rcpt_to: Sequence[str] = (BOB,), client: Client = XERO_MX
) -> list[Delivery]:
    return mta.deliver(message, client, XERO_BOUNCE, rcpt_to)


def forged_card() -> str:
    """A well-formed card an attacker signed with a key of their own."""
    signer = CardSigner(OKPKey.generate_key("Ed25519", private=True), "attacker-kid")
    claims = {"v": 1, "invoice": {"partner": "xero", "amount": "9999.00", "currency": "USD"}}
    return signer.sign(claims)
