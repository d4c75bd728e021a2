"""Rows to store in tests, with every field set to something that must round-trip."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any

from inboxpay.store.model import Address, Payment, PaymentMethod

#: The fake clock's start: microseconds set, so that lost precision shows.
START = datetime.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)

ADDRESS = Address(
    line1="1 Rue de l'Église",
    line2="Bât. B",
    city="Genève",
    region="GE",
    postal_code="1201",
    country="CH",
)


def method(owner: str = "alice@example.com", **changes: Any) -> PaymentMethod:
    base = PaymentMethod(
        id=f"pm_{uuid.uuid4().hex[:12]}",
        owner=owner,
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2031,
        nickname="work card",
        billing_address=ADDRESS,
        fingerprint=f"fp-{uuid.uuid4().hex}",
        sealed=b"\x00\x01nonce+ciphertext+tag\xff" * 3,
        wrapped_key=b"\x00wrapped\xfe",
        kek_version=1,
        created_at=START,
        updated_at=START,
    )
    return dataclasses.replace(base, **changes)


def payment(owner: str = "alice@example.com", **changes: Any) -> Payment:
    base = Payment(
        id=f"pay_{uuid.uuid4().hex[:12]}",
        owner=owner,
        invoice_key="xero|acct-1|INV-0001",
        card_id=f"jti-{uuid.uuid4().hex[:8]}",
        payment_method_id="pm_1",
        amount_minor=123_456_789_012,  # beyond 32 bits: the column must be 64-bit
        currency="EUR",
        status="pending",
        decline_reason="",
        challenge_url="",
        processor="fake",
        processor_key=f"pk-{uuid.uuid4().hex[:8]}",
        processor_ref="",
        details={"merchant": "Acme SàRL", "invoice": "INV-0001", "last4": "4242", "n": [1, 2]},
        created_at=START,
        updated_at=START,
    )
    return dataclasses.replace(base, **changes)
