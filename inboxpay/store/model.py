"""Rows the store keeps, as typed values. Every user-owned row names its ``owner``."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from inboxpay.errors import InboxPayError


class StoreError(InboxPayError):
    """A storage failure (database unreachable, constraint broken unexpectedly)."""


# The store's errors say what happened to a row; HTTP's words (NotFound, Conflict) belong
# to the sidecar's answers (inboxpay/sidecar/errors.py), which middleware.translate makes.


class RowNotFound(StoreError):
    """No such row for this owner (another owner's row is 'not found' too)."""


class WriteConflict(StoreError):
    """A uniqueness rule refused the write (see subclasses)."""


class AlreadyPaid(WriteConflict):
    """The invoice already has a pending, requires_action or succeeded payment."""


class AttemptLimit(StoreError):
    """A :class:`Hold`'s limit was reached: nothing was written."""


class DuplicatePaymentMethod(WriteConflict):
    """The owner already saved a payment method with this fingerprint."""


class PaymentFinal(WriteConflict):
    """The payment is succeeded, declined or failed: money history is never rewritten."""


class IdempotencyInFlight(WriteConflict):
    """The same Idempotency-Key is still being processed."""


class IdempotencyMismatch(WriteConflict):
    """The same Idempotency-Key was used with a different request body."""


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True)
class BillingProfile:
    owner: str
    name: str
    email: str
    address: Address
    updated_at: datetime.datetime


@dataclass(frozen=True)
class PaymentMethod:
    """A saved credit card. Only brand, last4 and expiry are in clear; number and holder
    name are in ``sealed`` (AES-256-GCM under a per-record data key wrapped by a vault KEK)."""

    id: str
    owner: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    nickname: str
    billing_address: Address
    fingerprint: str  # HMAC of the number, scoped to the owner
    sealed: bytes  # nonce + ciphertext + tag of the number and holder name
    wrapped_key: bytes  # the data key, wrapped by KEK version ``kek_version``
    kek_version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


class PaymentStatus(StrEnum):
    """The one list of payment statuses. The SQL CHECK constraint, the OpenAPI enum and the
    pane's ``statuses.js`` are derived from it, and tests hold them to it."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"


#: Waiting for the processor or the cardholder: the reconciler's business.
OPEN_STATUSES = (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)
#: Statuses that hold an invoice: at most one such payment per invoice_key.
ACTIVE_STATUSES = (*OPEN_STATUSES, PaymentStatus.SUCCEEDED)
#: The reason of a payment failed because the processor had no charge for it when asked:
#: a presumption, so the one failed payment a charge found later is attached to.
NOT_RECEIVED = "not_received"


@dataclass(frozen=True)
class Payment:
    id: str
    owner: str
    invoice_key: str  # one invoice (review.invoice_key): charged at most once
    card_id: str  # the InboxPay-Card jti
    payment_method_id: str
    amount_minor: int
    currency: str
    status: PaymentStatus
    decline_reason: str
    challenge_url: str
    processor: str  # the adapter that charges it
    processor_key: str  # the processor's idempotency key: one per invoice payment
    processor_ref: str
    details: dict[str, Any]  # receipt data: merchant, invoice number, last4, partner
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclass(frozen=True)
class Hold:
    """An attempt recorded together with a payment, unless ``limit`` attempts of ``kind``
    on ``subject`` were recorded since ``since`` (then :class:`AttemptLimit`)."""

    kind: str
    subject: str
    since: datetime.datetime
    limit: int


@dataclass(frozen=True)
class IdempotentResponse:
    """A finished request's stored answer, replayed for the same key and body."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime.datetime
    actor: str
    action: str
    object_id: str
    details: dict[str, Any]


@dataclass(frozen=True)
class OrgSetting:
    domain: str
    pay_enabled: bool
    updated_at: datetime.datetime
    updated_by: str
