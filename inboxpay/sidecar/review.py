"""Reviewing a card: verify the signature, check the caller is a recipient, find its status."""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from inboxpay.card.header import CardError, Verifier, recipient_hash
from inboxpay.currency import CurrencyError, to_minor
from inboxpay.sidecar.auth import Principal
from inboxpay.sidecar.errors import BadRequest, Forbidden
from inboxpay.sidecar.orgs import OrgDirectory
from inboxpay.store.api import Store
from inboxpay.store.model import Payment, PaymentStatus

#: Joins the parts of an invoice key; the parts may hold no control character (checked).
KEY_SEPARATOR = "\x1f"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The claims that name one invoice, in key order (amount goes in as minor units).
_IDENTITY = ("partner", "account", "merchant", "number", "amount", "currency")


@dataclass(frozen=True)
class Reviewed:
    claims: dict[str, Any]
    invoice_key: str
    amount_minor: int
    status: str  # payable | paid | processing | expired | org_disabled
    payment: Payment | None
    # Whether the caller may see ``payment``: its owner, or a recipient of its card.
    payment_visible: bool

    @property
    def invoice(self) -> dict[str, Any]:
        invoice: dict[str, Any] = self.claims["invoice"]
        return invoice


def amount_minor(invoice: dict[str, Any]) -> int:
    """The invoice's amount in minor units; CardError when it is no amount of its currency."""
    try:
        minor = to_minor(Decimal(invoice["amount"]), invoice["currency"])
    except (CurrencyError, InvalidOperation):
        raise CardError("malformed_card", "card amount is not an amount of its currency") from None
    if minor <= 0:
        raise CardError("malformed_card", "card amount is not positive")
    return minor


def invoice_key(claims: dict[str, Any]) -> str:
    """One invoice: who bills (partner, and the merchant's account and name: the account
    claim may be empty, or the customer's account id, so it cannot name the merchant on
    its own), its number, and what it asks for (amount in minor units, currency).

    Migration 0004 rewrote older keys into this form: change both together."""
    inv = claims["invoice"]
    parts = [str(inv.get(name, "")) for name in _IDENTITY]
    parts[_IDENTITY.index("amount")] = str(amount_minor(inv))
    return KEY_SEPARATOR.join(parts)


def _verify(verifier: Verifier, value: str) -> dict[str, Any]:
    try:
        claims = verifier.verify(value)
        invoice = claims["invoice"]
        for key in ("partner", "number", "amount", "currency", "due", "url", "merchant"):
            if not isinstance(invoice.get(key), str):
                raise CardError("malformed_card", f"card invoice lacks {key}")
        if not isinstance(invoice.get("account", ""), str):
            raise CardError("malformed_card", "card invoice account is not text")
        # A control character could move the boundary between two parts of the key.
        if any(_CONTROL.search(invoice.get(key, "")) for key in _IDENTITY):
            raise CardError("malformed_card", "card invoice has a control character")
        if not isinstance(claims.get("rcpt"), list) or not isinstance(claims.get("exp"), int):
            raise CardError("malformed_card", "card lacks recipients or expiry")
        amount_minor(invoice)  # CardError: a 400 or a 422 (middleware.translate)
    except (KeyError, TypeError, AttributeError):
        raise BadRequest("card payload is not an InboxPay card", "malformed_card") from None
    return claims


async def review(
    value: str,
    user: Principal,
    verifier: Verifier,
    recipient_key: bytes,
    store: Store,
    orgs: OrgDirectory,
) -> Reviewed:
    claims = _verify(verifier, value)
    caller = recipient_hash(recipient_key, user.sub)
    if caller not in claims["rcpt"]:
        raise Forbidden("this invoice was not addressed to you", "not_a_recipient")
    key = invoice_key(claims)
    payment = await store.active_payment_for_invoice(key)
    # The same invoice may come in another mail, to other people: they learn that it is
    # paid, never which payment paid it.
    visible = payment is not None and (
        payment.owner == user.sub or caller in payment.details.get("recipients", ())
    )
    if payment is not None and payment.status == PaymentStatus.SUCCEEDED:
        status = "paid"
    elif payment is not None:
        status = "processing"
    elif not await orgs.pay_enabled(user.sub):
        status = "org_disabled"
    elif claims["exp"] < time.time():
        status = "expired"
    else:
        status = "payable"
    return Reviewed(claims, key, amount_minor(claims["invoice"]), status, payment, visible)


def review_json(r: Reviewed) -> dict[str, Any]:
    inv, auth = r.invoice, r.claims.get("auth", {})
    due = datetime.date.fromisoformat(inv["due"])
    return {
        "card_id": r.claims.get("jti"),
        "status": r.status,
        "merchant": inv["merchant"],
        "partner": {"id": inv["partner"], "name": inv.get("partner_name", inv["partner"])},
        "broker": inv["broker"] if isinstance(inv.get("broker"), str) else "",
        "invoice_number": inv["number"],
        "account": inv.get("account", ""),
        "amount": inv["amount"],
        "currency": inv["currency"],
        "due_date": inv["due"],
        "overdue": due < datetime.datetime.now(datetime.UTC).date(),
        "invoice_url": inv["url"],
        "authentication": {
            "dkim": auth.get("dkim"),
            "dkim_domain": auth.get("dkim_domain"),
            "spf": auth.get("spf"),
            "spf_domain": auth.get("spf_domain"),
            "aligned": True,
        },
        "from": r.claims.get("msg", {}).get("from"),
        "expires_at": datetime.datetime.fromtimestamp(r.claims["exp"], datetime.UTC).isoformat(),
        "payment": (
            {"id": r.payment.id, "status": r.payment.status}
            if r.payment is not None and r.payment_visible
            else None
        ),
    }
