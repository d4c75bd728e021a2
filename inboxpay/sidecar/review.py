"""Reviewing a card: verify the signature, check the caller is a recipient, find its status."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from inboxpay.card import CardError, Verifier, recipient_hash
from inboxpay.orgs import OrgDirectory
from inboxpay.sidecar.auth import Principal
from inboxpay.sidecar.errors import BadRequest, Forbidden, Unprocessable
from inboxpay.store.api import Store
from inboxpay.store.model import Payment


@dataclass(frozen=True)
class Reviewed:
    claims: dict[str, Any]
    invoice_key: str
    status: str  # payable | paid | processing | expired | org_disabled
    payment: Payment | None

    @property
    def invoice(self) -> dict[str, Any]:
        invoice: dict[str, Any] = self.claims["invoice"]
        return invoice


def invoice_key(claims: dict[str, Any]) -> str:
    """One invoice: partner + merchant account + invoice number."""
    inv = claims["invoice"]
    return "\x1f".join((str(inv["partner"]), str(inv.get("account", "")), str(inv["number"])))


def _verify(verifier: Verifier, value: str) -> dict[str, Any]:
    try:
        claims = verifier.verify(value)
        invoice = claims["invoice"]
        for key in ("partner", "number", "amount", "currency", "due", "url", "merchant"):
            if not isinstance(invoice.get(key), str):
                raise CardError("malformed_card", f"card invoice lacks {key}")
        if not isinstance(claims.get("rcpt"), list) or not isinstance(claims.get("exp"), int):
            raise CardError("malformed_card", "card lacks recipients or expiry")
    except CardError as e:
        if e.code == "malformed_card":
            raise BadRequest(str(e), e.code) from None
        raise Unprocessable(str(e), e.code) from None
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
    if recipient_hash(recipient_key, user.sub) not in claims["rcpt"]:
        raise Forbidden("this invoice was not addressed to you", "not_a_recipient")
    key = invoice_key(claims)
    payment = await store.active_payment_for_invoice(key)
    if payment is not None and payment.status == "succeeded":
        status = "paid"
    elif payment is not None:
        status = "processing"
    elif not await orgs.pay_enabled(user.sub):
        status = "org_disabled"
    elif claims["exp"] < time.time():
        status = "expired"
    else:
        status = "payable"
    return Reviewed(claims, key, status, payment)


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
        "payment": {"id": r.payment.id, "status": r.payment.status} if r.payment else None,
    }
