"""Cards for tests, signed with a config's keys exactly as the milter signs them."""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Sequence

from inboxpay.card import VERSION, CardSigner, recipient_hash
from inboxpay.config import Config
from inboxpay.keys import kid_of, load_recipient_key, load_signing_key


def sign_card(
    cfg: Config,
    recipients: Sequence[str],
    *,
    partner_id: str = "xero",
    merchant: str = "Wide World Importers",
    amount: str = "1234.50",
    currency: str = "USD",
    number: str | None = None,
    due: datetime.date | None = None,
    url: str | None = None,
    ttl: int = 30 * 86400,
) -> str:
    """A card value for a new invoice of ``partner_id`` (claims: docs/card-format.md)."""
    key = load_signing_key(cfg.signing.key_file)
    rkey = load_recipient_key(cfg.signing.recipient_key_file)
    partner = next(p for p in cfg.partners if p.id == partner_id)
    sender = partner.sender_domains[0]
    now = int(time.time())
    claims = {
        "v": VERSION,
        "jti": uuid.uuid4().hex,
        "iss": cfg.milter.authserv_id,
        "iat": now,
        "exp": now + ttl,
        "invoice": {
            "partner": partner.id,
            "partner_name": partner.name,
            "merchant": merchant,
            "account": "ACC-7",
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
        "rcpt": sorted({recipient_hash(rkey, r) for r in recipients}),
    }
    return CardSigner(key, kid_of(key)).sign(claims)
