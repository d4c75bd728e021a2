"""Rows to model values and back: JSON columns, addresses and the column lists of each table.

The engines already hand back datetimes, bools and bytes; what is left is the store's own
encoding (JSON text), which is the same on both engines.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from inboxpay.store.database import Row
from inboxpay.store.model import (
    Address,
    AuditEntry,
    BillingProfile,
    OrgSetting,
    Payment,
    PaymentMethod,
    PaymentStatus,
)

ORG_COLUMNS = "domain, pay_enabled, updated_at, updated_by"
BILLING_COLUMNS = "owner, name, email, address, updated_at"
METHOD_COLUMNS = (
    "id, owner, brand, last4, exp_month, exp_year, nickname, billing_address, fingerprint,"
    " sealed, wrapped_key, kek_version, created_at, updated_at"
)
PAYMENT_COLUMNS = (
    "id, owner, invoice_key, card_id, payment_method_id, amount_minor, currency, status,"
    " decline_reason, challenge_url, processor, processor_key, processor_ref, details,"
    " created_at, updated_at"
)
AUDIT_COLUMNS = "id, at, actor, action, object_id, details"


def to_json(value: dict[str, Any]) -> str:
    """Canonical JSON: the same dict always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("a JSON column holds something other than an object")
    return value


def address_json(address: Address) -> str:
    return to_json(dataclasses.asdict(address))


def address_from_json(text: str) -> Address:
    # Unknown keys are ignored, so that a newer InboxPay's rows still read.
    known = {f.name for f in dataclasses.fields(Address)}
    return Address(**{k: str(v) for k, v in from_json(text).items() if k in known})


def org(row: Row) -> OrgSetting:
    return OrgSetting(
        domain=row["domain"],
        pay_enabled=bool(row["pay_enabled"]),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


def billing_profile(row: Row) -> BillingProfile:
    return BillingProfile(
        owner=row["owner"],
        name=row["name"],
        email=row["email"],
        address=address_from_json(row["address"]),
        updated_at=row["updated_at"],
    )


def payment_method(row: Row) -> PaymentMethod:
    return PaymentMethod(
        id=row["id"],
        owner=row["owner"],
        brand=row["brand"],
        last4=row["last4"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        nickname=row["nickname"],
        billing_address=address_from_json(row["billing_address"]),
        fingerprint=row["fingerprint"],
        sealed=bytes(row["sealed"]),
        wrapped_key=bytes(row["wrapped_key"]),
        kek_version=row["kek_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def payment_method_values(m: PaymentMethod) -> tuple[object, ...]:
    """In METHOD_COLUMNS order."""
    return (
        m.id,
        m.owner,
        m.brand,
        m.last4,
        m.exp_month,
        m.exp_year,
        m.nickname,
        address_json(m.billing_address),
        m.fingerprint,
        m.sealed,
        m.wrapped_key,
        m.kek_version,
        m.created_at,
        m.updated_at,
    )


def payment(row: Row) -> Payment:
    return Payment(
        id=row["id"],
        owner=row["owner"],
        invoice_key=row["invoice_key"],
        card_id=row["card_id"],
        payment_method_id=row["payment_method_id"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        status=PaymentStatus(row["status"]),
        decline_reason=row["decline_reason"],
        challenge_url=row["challenge_url"],
        processor=row["processor"],
        processor_key=row["processor_key"],
        processor_ref=row["processor_ref"],
        details=from_json(row["details"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def payment_values(p: Payment) -> tuple[object, ...]:
    """In PAYMENT_COLUMNS order."""
    return (
        p.id,
        p.owner,
        p.invoice_key,
        p.card_id,
        p.payment_method_id,
        p.amount_minor,
        p.currency,
        PaymentStatus(p.status).value,
        p.decline_reason,
        p.challenge_url,
        p.processor,
        p.processor_key,
        p.processor_ref,
        to_json(p.details),
        p.created_at,
        p.updated_at,
    )


def audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        object_id=row["object_id"],
        details=from_json(row["details"]),
    )


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an INSERT or an IN list of ``count`` values."""
    return ", ".join("?" * count)
