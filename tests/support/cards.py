"""Cards for tests, signed with a config's keys exactly as the milter signs them."""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Sequence
from typing import Any

from inboxpay.card.header import VERSION, CardSigner, recipient_hash
from inboxpay.card.keys import kid_of, load_recipient_key, load_signing_key
from inboxpay.config import Config, Partner


def card_claims(
    partner: Partner,
    issuer: str,
    recipient_key: bytes,
    recipients: Sequence[str],
    *,
    merchant: str = "Wide World Importers",
    account: str = "ACC-7",
    broker: str = "Xero",
    amount: str = "1234.50",
    currency: str = "USD",
    number: str | None = None,
    due: datetime.date | None = None,
    url: str | None = None,
    ttl: int = 30 * 86400,
) -> dict[str, Any]:
    """The claims of a card for a new invoice of ``partner`` (docs/card-format.md)."""
    sender = partner.sender_domains[0]
    now = int(time.time())
    return {
        "v": VERSION,
        "jti": uuid.uuid4().hex,
        "iss": issuer,
        "iat": now,
        "exp": now + ttl,
        "invoice": {
            "partner": partner.id,
            "partner_name": partner.name,
            "broker": broker,
            "merchant": merchant,
            "account": account,
            "number": number or f"INV-{uuid.uuid4().hex[:10].upper()}",
            "amount": amount,
            "currency": currency,
            "due": (due or datetime.date.today() + datetime.timedelta(days=14)).isoformat(),
            "url": url or f"https://{partner.invoice_url_hosts[0]}/view/{uuid.uuid4().hex[:12]}",
        },
        "auth": {
            "dkim": "pass",
            "dkim_domain": sender,
            "spf": "pass",
            "spf_domain": sender,
            "spf_aligned": True,
            "dmarc_policy": "reject",
        },
        "msg": {"message_id": f"<{uuid.uuid4().hex}@{sender}>", "from": f"billing@{sender}"},
        "rcpt": sorted({recipient_hash(recipient_key, r) for r in recipients}),
    }


def sign_card(
    cfg: Config,
    recipients: Sequence[str],
    *,
    partner_id: str = "xero",
    merchant: str = "Wide World Importers",
    account: str = "ACC-7",
    broker: str = "Xero",
    amount: str = "1234.50",
    currency: str = "USD",
    number: str | None = None,
    due: datetime.date | None = None,
    url: str | None = None,
    ttl: int = 30 * 86400,
) -> str:
    """A card value for a new invoice of ``partner_id``, signed with the config's key."""
    key = load_signing_key(cfg.signing.key_file)
    rkey = load_recipient_key(cfg.signing.recipient_key_file)
    partner = next(p for p in cfg.partners if p.id == partner_id)
    claims = card_claims(
        partner,
        cfg.milter.authserv_id,
        rkey,
        recipients,
        merchant=merchant,
        account=account,
        broker=broker,
        amount=amount,
        currency=currency,
        number=number,
        due=due,
        url=url,
        ttl=ttl,
    )
    return CardSigner(key, kid_of(key)).sign(claims)
