"""The one storage interface the sidecar, the milter and the CLI use; engines live below it."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, Protocol

from inboxpay.store.model import (
    Address,
    AuditEntry,
    BillingProfile,
    Hold,
    IdempotentResponse,
    OrgSetting,
    Payment,
    PaymentMethod,
)


class Store(Protocol):
    """All methods are coroutines; owner-scoped reads never return another owner's rows."""

    engine: str  # "sqlite" | "postgresql"

    async def close(self) -> None: ...
    async def migrate(self) -> list[int]:
        """Apply pending numbered migrations; return the versions applied."""
        ...

    async def schema_version(self) -> int: ...
    async def ping(self) -> None:
        """Raise StoreError when the database cannot be reached."""
        ...

    # --- organizations (the tenant switch) ---
    async def set_org(self, domain: str, pay_enabled: bool, actor: str) -> OrgSetting: ...
    async def get_org(self, domain: str) -> OrgSetting | None: ...
    async def list_orgs(self) -> list[OrgSetting]: ...

    # --- billing profile (one per owner) ---
    async def get_billing_profile(self, owner: str) -> BillingProfile | None: ...
    async def put_billing_profile(
        self, owner: str, name: str, email: str, address: Address
    ) -> BillingProfile: ...

    # --- payment methods ---
    async def add_payment_method(self, method: PaymentMethod) -> PaymentMethod:
        """Insert; raises DuplicatePaymentMethod when (owner, fingerprint) exists."""
        ...

    async def get_payment_method(self, owner: str, method_id: str) -> PaymentMethod:
        """Raises RowNotFound (also for another owner's id or a deleted one)."""
        ...

    async def list_payment_methods(self, owner: str) -> list[PaymentMethod]: ...
    async def update_payment_method(
        self, owner: str, method_id: str, **fields: Any
    ) -> PaymentMethod:
        """Update exp_month, exp_year, nickname, billing_address; RowNotFound if not the owner's."""
        ...

    async def delete_payment_method(self, owner: str, method_id: str) -> None:
        """Delete the row and its sealed data for good; RowNotFound if not the owner's."""
        ...

    async def all_payment_method_keys(self) -> list[tuple[str, str, bytes, int]]:
        """(id, owner, wrapped_key, kek_version) of every payment method, for KEK rotation."""
        ...

    async def rewrap_payment_method(
        self, method_id: str, old_version: int, wrapped_key: bytes, kek_version: int
    ) -> bool:
        """Replace the wrapped data key if still at ``old_version``; False if it changed."""
        ...

    # --- payments: exactly once per invoice ---
    async def create_payment(self, payment: Payment, hold: Hold | None = None) -> Payment:
        """Insert a pending payment; raises AlreadyPaid when the invoice_key already has an
        active (pending, requires_action, succeeded) payment. With ``hold``, also records
        that attempt in the same transaction, or raises AttemptLimit (and writes nothing)
        when its limit is reached. Committed before returning."""
        ...

    async def charged_attempts(self, invoice_key: str) -> int:
        """How many of the invoice's payments reached a charge at the processor (have a
        processor_ref): each such one used its processor idempotency key up."""
        ...

    async def get_payment(self, owner: str, payment_id: str) -> Payment: ...
    async def get_payment_any_owner(self, payment_id: str) -> Payment:
        """For the reconciler and the admin CLI only."""
        ...

    async def list_payments(self, owner: str, limit: int = 100) -> list[Payment]: ...
    async def list_all_payments(self, limit: int = 100) -> list[Payment]: ...
    async def update_payment(
        self,
        payment_id: str,
        status: str,
        decline_reason: str = "",
        challenge_url: str = "",
        processor_ref: str = "",
    ) -> Payment: ...
    async def active_payment_for_invoice(self, invoice_key: str) -> Payment | None: ...
    async def revive_payment(
        self,
        payment_id: str,
        status: str,
        decline_reason: str,
        challenge_url: str,
        processor_ref: str,
    ) -> Payment | None:
        """Attach a charge the processor shows late to a payment failed as not_received;
        None when it is no longer such a payment or another payment carries the charge;
        AlreadyPaid when another payment holds the invoice."""
        ...

    async def not_received_payments(self, since: datetime.datetime) -> list[Payment]:
        """Payments failed as not_received (updated) since ``since``."""
        ...

    async def stale_payments(
        self, statuses: Sequence[str], older_than: datetime.datetime
    ) -> list[Payment]:
        """Payments left pending (or requires_action) since before ``older_than``."""
        ...

    # --- idempotency keys, scoped to the owner ---
    async def begin_idempotent(
        self, owner: str, key: str, request_hash: str
    ) -> IdempotentResponse | None:
        """Claim the key. None: claimed now, go ahead. A response: replay it.
        Raises IdempotencyInFlight while another request holds it, IdempotencyMismatch
        when the stored request_hash differs."""
        ...

    async def finish_idempotent(
        self, owner: str, key: str, status: int, body: dict[str, Any]
    ) -> None: ...
    async def release_idempotent(self, owner: str, key: str) -> None:
        """Forget an in-flight claim whose request failed before any effect (so it may retry)."""
        ...

    # --- rate limits and lockouts ---
    async def record_attempt(self, owner: str, kind: str, subject: str) -> None: ...
    async def take_attempt(
        self, owner: str, kind: str, subject: str, since: datetime.datetime, limit: int
    ) -> bool:
        """Record an attempt unless ``limit`` were made since ``since``; False if refused.
        Atomic across processes sharing the database."""
        ...

    async def count_attempts(
        self, owner: str, kind: str, subject: str, since: datetime.datetime
    ) -> int: ...
    async def clear_attempts(self, owner: str, kind: str, subject: str) -> None: ...
    async def release_attempt(self, owner: str, kind: str, subject: str) -> None:
        """Forget one recorded attempt (a hold whose outcome did not count against it)."""
        ...

    # --- audit trail (append-only: the database refuses UPDATE and DELETE) ---
    async def audit(
        self, actor: str, action: str, object_id: str, details: dict[str, Any]
    ) -> None: ...
    async def audit_entries(self, limit: int = 100) -> list[AuditEntry]: ...
