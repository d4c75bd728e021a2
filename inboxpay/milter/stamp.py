"""The claims of a new card, from a verdict (format: docs/card-format.md)."""

from __future__ import annotations

import time
from typing import Any

from inboxpay.card.header import VERSION, new_card_id, recipient_hash
from inboxpay.milter.decide import Verdict
from inboxpay.milter.facts import Evidence


def claims(
    verdict: Verdict,
    evidence: Evidence,
    recipient_key: bytes,
    issuer: str,
    ttl_seconds: int,
    now: float | None = None,
) -> dict[str, Any]:
    invoice, partner = verdict.invoice, verdict.partner
    if invoice is None or partner is None:
        raise ValueError("only a card verdict carries an invoice")
    issued = int(now if now is not None else time.time())
    spf = evidence.spf
    return {
        "v": VERSION,
        "jti": new_card_id(),
        "iss": issuer,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "invoice": {
            "partner": partner.id,
            "partner_name": partner.name,
            "broker": invoice.partner_name,  # as the markup names it; "" when it names none
            "merchant": invoice.merchant_name,
            "account": invoice.merchant_account,
            "number": invoice.number,
            "amount": invoice.amount,
            "currency": invoice.currency,
            "due": invoice.due.isoformat(),
            "url": invoice.url,
        },
        "auth": {
            "dkim": "pass",
            "dkim_domain": verdict.dkim_domain,
            "spf": spf.result if spf else "none",
            "spf_domain": spf.domain if spf else "",
            "spf_aligned": verdict.spf_aligned,
            "dmarc_policy": evidence.dmarc.policy if evidence.dmarc else None,
        },
        "msg": {"message_id": evidence.message_id, "from": evidence.from_addresses[0]},
        "rcpt": sorted({recipient_hash(recipient_key, r) for r in verdict.payers}),
    }
