"""SqlStore: the Store protocol over a Database, with its SQL written once for both engines."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from inboxpay import addresses
from inboxpay.store import migrate as migrations
from inboxpay.store import rows
from inboxpay.store.database import Database, Transaction, UniqueViolation
from inboxpay.store.model import (
    ACTIVE_STATUSES,
    NOT_RECEIVED,
    OPEN_STATUSES,
    Address,
    AlreadyPaid,
    AttemptLimit,
    AuditEntry,
    BillingProfile,
    DuplicatePaymentMethod,
    Hold,
    IdempotencyInFlight,
    IdempotencyMismatch,
    IdempotentResponse,
    OrgSetting,
    Payment,
    PaymentFinal,
    PaymentMethod,
    PaymentStatus,
    RowNotFound,
    WriteConflict,
)

Clock = Callable[[], datetime.datetime]

#: An in-flight Idempotency-Key claim older than this is presumed dead (its process
#: crashed between claiming and finishing) and the next request with the same key and
#: body takes it over. Taking over a live but slow request cannot charge twice: the
#: payment itself is guarded by the one-active-payment-per-invoice index.
IN_FLIGHT_TTL = datetime.timedelta(minutes=5)

#: Fields update_payment_method may change, with their types.
_METHOD_FIELDS: dict[str, type] = {
    "exp_month": int,
    "exp_year": int,
    "nickname": str,
    "billing_address": Address,
}

#: How each unique index's refusal reads to the caller.
_INDEX_ERRORS: dict[str, tuple[type[WriteConflict], str]] = {
    "payments_one_active_per_invoice": (
        AlreadyPaid,
        "this invoice already has a pending, requires_action or succeeded payment",
    ),
    "payment_methods_owner_fingerprint": (
        DuplicatePaymentMethod,
        "this card is already saved",
    ),
}


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@contextmanager
def _conflicts() -> Iterator[None]:
    """Turn a unique violation into the WriteConflict subclass its index stands for."""
    try:
        yield
    except UniqueViolation as e:
        known = _INDEX_ERRORS.get(e.constraint)
        if known is None:
            raise
        error, message = known
        raise error(message) from None


def _domain(domain: str) -> str:
    # The same rule as addresses and recipient hashes: case, trailing dot and IDNA.
    return addresses.normalize_domain(domain)


def _owner(owner: str) -> str:
    """Owners are addresses as addresses.normalize writes them (a token's subject is one):
    another spelling would name another owner, so it is refused rather than guessed at."""
    if addresses.normalize(owner) != owner:
        raise ValueError("an owner must be a normalised address (addresses.normalize)")
    return owner


def _status(status: str) -> PaymentStatus:
    try:
        return PaymentStatus(status)
    except ValueError:
        raise ValueError(f"unknown payment status {status!r}") from None


def _in(statuses: Sequence[str]) -> str:
    """``status IN (?, ?)`` for ``statuses``, which are passed as parameters."""
    return f"status IN ({rows.placeholders(len(statuses))})"


def _limit(limit: int) -> int:
    return max(0, int(limit))


class SqlStore:
    """The Store protocol on SQLite or PostgreSQL."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = utc_now,
        in_flight_ttl: datetime.timedelta = IN_FLIGHT_TTL,
    ) -> None:
        self.db = db
        self.engine = db.engine
        self._clock = clock
        self._in_flight_ttl = in_flight_ttl

    def _now(self) -> datetime.datetime:
        return self._clock().astimezone(datetime.UTC)

    async def close(self) -> None:
        await self.db.close()

    async def migrate(self) -> list[int]:
        return await migrations.migrate(self.db)

    async def schema_version(self) -> int:
        return await migrations.schema_version(self.db)

    async def ping(self) -> None:
        await self.db.fetchval("SELECT 1")

    # --- organizations ---

    async def set_org(self, domain: str, pay_enabled: bool, actor: str) -> OrgSetting:
        setting = OrgSetting(_domain(domain), bool(pay_enabled), self._now(), actor)
        await self.db.execute(
            f"INSERT INTO orgs ({rows.ORG_COLUMNS}) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (domain) DO UPDATE SET pay_enabled = excluded.pay_enabled,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            setting.domain,
            setting.pay_enabled,
            setting.updated_at,
            setting.updated_by,
        )
        return setting

    async def get_org(self, domain: str) -> OrgSetting | None:
        row = await self.db.fetchrow(
            f"SELECT {rows.ORG_COLUMNS} FROM orgs WHERE domain = ?", _domain(domain)
        )
        return None if row is None else rows.org(row)

    async def list_orgs(self) -> list[OrgSetting]:
        found = await self.db.fetch(f"SELECT {rows.ORG_COLUMNS} FROM orgs ORDER BY domain")
        return [rows.org(row) for row in found]

    # --- billing profile ---

    async def get_billing_profile(self, owner: str) -> BillingProfile | None:
        owner = _owner(owner)
        row = await self.db.fetchrow(
            f"SELECT {rows.BILLING_COLUMNS} FROM billing_profiles WHERE owner = ?", owner
        )
        return None if row is None else rows.billing_profile(row)

    async def put_billing_profile(
        self, owner: str, name: str, email: str, address: Address
    ) -> BillingProfile:
        owner = _owner(owner)
        profile = BillingProfile(owner, name, email, address, self._now())
        await self.db.execute(
            f"INSERT INTO billing_profiles ({rows.BILLING_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (owner) DO UPDATE SET name = excluded.name, email = excluded.email,"
            " address = excluded.address, updated_at = excluded.updated_at",
            owner,
            name,
            email,
            rows.address_json(address),
            profile.updated_at,
        )
        return profile

    # --- payment methods ---

    async def add_payment_method(self, method: PaymentMethod) -> PaymentMethod:
        _owner(method.owner)
        with _conflicts():
            await self.db.execute(
                f"INSERT INTO payment_methods ({rows.METHOD_COLUMNS})"
                f" VALUES ({rows.placeholders(14)})",
                *rows.payment_method_values(method),
            )
        return method

    async def get_payment_method(self, owner: str, method_id: str) -> PaymentMethod:
        owner = _owner(owner)
        row = await self.db.fetchrow(
            f"SELECT {rows.METHOD_COLUMNS} FROM payment_methods WHERE id = ? AND owner = ?",
            method_id,
            owner,
        )
        if row is None:
            raise RowNotFound(f"no payment method {method_id}")
        return rows.payment_method(row)

    async def list_payment_methods(self, owner: str) -> list[PaymentMethod]:
        owner = _owner(owner)
        found = await self.db.fetch(
            f"SELECT {rows.METHOD_COLUMNS} FROM payment_methods WHERE owner = ?"
            " ORDER BY created_at, id",
            owner,
        )
        return [rows.payment_method(row) for row in found]

    async def update_payment_method(
        self, owner: str, method_id: str, **fields: Any
    ) -> PaymentMethod:
        owner = _owner(owner)
        unknown = sorted(set(fields) - set(_METHOD_FIELDS))
        if unknown:
            raise ValueError(
                f"payment method fields {unknown} cannot be updated; only {sorted(_METHOD_FIELDS)}"
            )
        assignments: list[str] = []
        values: list[object] = []
        for name, value in fields.items():
            kind = _METHOD_FIELDS[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"payment method field {name} must be {kind.__name__}")
            # Column names come from _METHOD_FIELDS only, never from the caller's text.
            assignments.append(f"{name} = ?")
            values.append(rows.address_json(value) if isinstance(value, Address) else value)
        if not assignments:
            return await self.get_payment_method(owner, method_id)
        assignments.append("updated_at = ?")
        values.append(self._now())
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE payment_methods SET {', '.join(assignments)} WHERE id = ? AND owner = ?",
                *values,
                method_id,
                owner,
            )
            if not changed:
                raise RowNotFound(f"no payment method {method_id}")
            row = await tx.fetchrow(
                f"SELECT {rows.METHOD_COLUMNS} FROM payment_methods WHERE id = ?", method_id
            )
        assert row is not None  # updated in this very transaction
        return rows.payment_method(row)

    async def delete_payment_method(self, owner: str, method_id: str) -> None:
        owner = _owner(owner)
        # On SQLite, secure_delete (see sqlite_db) overwrites the freed sealed bytes.
        deleted = await self.db.execute(
            "DELETE FROM payment_methods WHERE id = ? AND owner = ?", method_id, owner
        )
        if not deleted:
            raise RowNotFound(f"no payment method {method_id}")

    async def all_payment_method_keys(self) -> list[tuple[str, str, bytes, int]]:
        found = await self.db.fetch(
            "SELECT id, owner, wrapped_key, kek_version FROM payment_methods ORDER BY id"
        )
        return [
            (row["id"], row["owner"], bytes(row["wrapped_key"]), row["kek_version"])
            for row in found
        ]

    async def rewrap_payment_method(
        self, method_id: str, old_version: int, wrapped_key: bytes, kek_version: int
    ) -> bool:
        # Compare-and-set on kek_version: a concurrent rotation or edit wins, we report it.
        # updated_at is left alone: the card did not change, only the key wrapping it.
        changed = await self.db.execute(
            "UPDATE payment_methods SET wrapped_key = ?, kek_version = ?"
            " WHERE id = ? AND kek_version = ?",
            wrapped_key,
            kek_version,
            method_id,
            old_version,
        )
        return changed == 1

    # --- payments ---

    async def create_payment(self, payment: Payment, hold: Hold | None = None) -> Payment:
        _owner(payment.owner)
        if payment.status != PaymentStatus.PENDING:
            raise ValueError(f"a new payment must be pending, not {payment.status!r}")
        # The partial unique index decides between concurrent requests, in this process or
        # another. With a hold, its attempt is counted and recorded in the same transaction
        # (under the limit's lock), so that a burst cannot overshoot that limit either.
        with _conflicts():
            async with self.db.transaction() as tx:
                if hold is not None and not await self._take(tx, payment.owner, hold):
                    raise AttemptLimit(f"{hold.kind} limit of {hold.limit} reached")
                await tx.execute(
                    f"INSERT INTO payments ({rows.PAYMENT_COLUMNS})"
                    f" VALUES ({rows.placeholders(16)})",
                    *rows.payment_values(payment),
                )
        return payment

    async def charged_attempts(self, invoice_key: str) -> int:
        # A processor_ref is set only from the processor's answer: that key holds a charge.
        count = await self.db.fetchval(
            "SELECT count(*) FROM payments WHERE invoice_key = ? AND processor_ref <> ''",
            invoice_key,
        )
        return int(count)

    async def get_payment(self, owner: str, payment_id: str) -> Payment:
        owner = _owner(owner)
        row = await self.db.fetchrow(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments WHERE id = ? AND owner = ?",
            payment_id,
            owner,
        )
        if row is None:
            raise RowNotFound(f"no payment {payment_id}")
        return rows.payment(row)

    async def get_payment_any_owner(self, payment_id: str) -> Payment:
        row = await self.db.fetchrow(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments WHERE id = ?", payment_id
        )
        if row is None:
            raise RowNotFound(f"no payment {payment_id}")
        return rows.payment(row)

    async def list_payments(self, owner: str, limit: int = 100) -> list[Payment]:
        owner = _owner(owner)
        found = await self.db.fetch(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments WHERE owner = ?"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            owner,
            _limit(limit),
        )
        return [rows.payment(row) for row in found]

    async def list_all_payments(self, limit: int = 100) -> list[Payment]:
        found = await self.db.fetch(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments ORDER BY created_at DESC, id DESC"
            " LIMIT ?",
            _limit(limit),
        )
        return [rows.payment(row) for row in found]

    async def update_payment(
        self,
        payment_id: str,
        status: str,
        decline_reason: str = "",
        challenge_url: str = "",
        processor_ref: str = "",
    ) -> Payment:
        """Set the status. decline_reason and challenge_url describe the new status and are
        replaced (cleared when not given); processor_ref, once known, is kept when not given."""
        status = _status(status)
        assignments = ["status = ?", "decline_reason = ?", "challenge_url = ?", "updated_at = ?"]
        values: list[object] = [status.value, decline_reason, challenge_url, self._now()]
        if processor_ref:
            assignments.append("processor_ref = ?")
            values.append(processor_ref)
        with _conflicts():  # back to an active status while another payment holds the invoice
            async with self.db.transaction() as tx:
                # Only an open payment moves; a final one may only be re-stated as it is.
                changed = await tx.execute(
                    f"UPDATE payments SET {', '.join(assignments)} WHERE id = ?"
                    f" AND ({_in(OPEN_STATUSES)} OR status = ?)",
                    *values,
                    payment_id,
                    *OPEN_STATUSES,
                    status.value,
                )
                if not changed:
                    exists = await tx.fetchval(
                        "SELECT status FROM payments WHERE id = ?", payment_id
                    )
                    if exists is None:
                        raise RowNotFound(f"no payment {payment_id}")
                    raise PaymentFinal(f"payment {payment_id} is already {exists}")
                row = await tx.fetchrow(
                    f"SELECT {rows.PAYMENT_COLUMNS} FROM payments WHERE id = ?", payment_id
                )
        assert row is not None  # updated in this very transaction
        return rows.payment(row)

    async def revive_payment(
        self,
        payment_id: str,
        status: str,
        decline_reason: str,
        challenge_url: str,
        processor_ref: str,
    ) -> Payment | None:
        """Attach a charge found late to a payment failed as not_received (the only failed
        payment whose failure was a presumption). None when the payment is not such a one
        any more, or another payment already carries that charge."""
        status = _status(status)
        with _conflicts():  # AlreadyPaid: another payment holds the invoice now
            async with self.db.transaction() as tx:
                changed = await tx.execute(
                    "UPDATE payments SET status = ?, decline_reason = ?, challenge_url = ?,"
                    " processor_ref = ?, updated_at = ?"
                    " WHERE id = ? AND status = ? AND decline_reason = ?"
                    " AND NOT EXISTS (SELECT 1 FROM payments WHERE processor_ref = ?)",
                    status.value,
                    decline_reason,
                    challenge_url,
                    processor_ref,
                    self._now(),
                    payment_id,
                    PaymentStatus.FAILED.value,
                    NOT_RECEIVED,
                    processor_ref,
                )
                if not changed:
                    return None
                row = await tx.fetchrow(
                    f"SELECT {rows.PAYMENT_COLUMNS} FROM payments WHERE id = ?", payment_id
                )
        assert row is not None  # updated in this very transaction
        return rows.payment(row)

    async def not_received_payments(self, since: datetime.datetime) -> list[Payment]:
        """Payments failed as not_received since ``since``, oldest first."""
        found = await self.db.fetch(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments"
            " WHERE status = ? AND decline_reason = ? AND updated_at >= ?"
            " ORDER BY updated_at, id",
            PaymentStatus.FAILED.value,
            NOT_RECEIVED,
            since,
        )
        return [rows.payment(row) for row in found]

    async def active_payment_for_invoice(self, invoice_key: str) -> Payment | None:
        row = await self.db.fetchrow(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments WHERE invoice_key = ?"
            f" AND {_in(ACTIVE_STATUSES)}",
            invoice_key,
            *ACTIVE_STATUSES,
        )
        return None if row is None else rows.payment(row)

    async def stale_payments(
        self, statuses: Sequence[str], older_than: datetime.datetime
    ) -> list[Payment]:
        """Payments in one of ``statuses`` whose last change (updated_at: when they entered
        that status, or a later update) is before ``older_than``; oldest first."""
        if not statuses:
            return []
        found = await self.db.fetch(
            f"SELECT {rows.PAYMENT_COLUMNS} FROM payments"
            f" WHERE status IN ({rows.placeholders(len(statuses))}) AND updated_at < ?"
            " ORDER BY updated_at, id",
            *(_status(s).value for s in statuses),
            older_than,
        )
        return [rows.payment(row) for row in found]

    # --- idempotency keys ---

    async def begin_idempotent(
        self, owner: str, key: str, request_hash: str
    ) -> IdempotentResponse | None:
        owner = _owner(owner)
        now = self._now()
        # Twice at most: on PostgreSQL the row that refused our INSERT may be released
        # before we read it, and then the key is free to claim again.
        for _ in range(2):
            async with self.db.transaction() as tx:
                claimed = await tx.execute(
                    "INSERT INTO idempotency_keys"
                    " (owner, request_key, request_hash, state, created_at, claimed_at)"
                    " VALUES (?, ?, ?, 'in_flight', ?, ?)"
                    " ON CONFLICT (owner, request_key) DO NOTHING",
                    owner,
                    key,
                    request_hash,
                    now,
                    now,
                )
                if claimed:
                    return None
                row = await tx.fetchrow(
                    "SELECT request_hash, state, response_status, response_body, claimed_at"
                    " FROM idempotency_keys WHERE owner = ? AND request_key = ?",
                    owner,
                    key,
                )
                if row is None:
                    continue
                if row["request_hash"] != request_hash:
                    raise IdempotencyMismatch(
                        "this Idempotency-Key was used with a different request"
                    )
                if row["state"] == "done":
                    return IdempotentResponse(
                        int(row["response_status"]), rows.from_json(row["response_body"])
                    )
                if row["claimed_at"] > now - self._in_flight_ttl:
                    raise IdempotencyInFlight("a request with this Idempotency-Key is running")
                # Take over the abandoned claim, unless someone else just did.
                taken = await tx.execute(
                    "UPDATE idempotency_keys SET claimed_at = ?"
                    " WHERE owner = ? AND request_key = ? AND state = 'in_flight'"
                    " AND claimed_at = ?",
                    now,
                    owner,
                    key,
                    row["claimed_at"],
                )
                if taken:
                    return None
                raise IdempotencyInFlight("a request with this Idempotency-Key is running")
        raise IdempotencyInFlight("a request with this Idempotency-Key is running")

    async def finish_idempotent(
        self, owner: str, key: str, status: int, body: dict[str, Any]
    ) -> None:
        """Store the answer to replay, if the key is still in flight. Otherwise (already
        finished by a request that took an abandoned claim over, or released) the first
        answer stands and this does nothing: the request finishing now did its work, and
        its own client must still get its answer rather than an error."""
        owner = _owner(owner)
        await self.db.execute(
            "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?"
            " WHERE owner = ? AND request_key = ? AND state = 'in_flight'",
            int(status),
            rows.to_json(body),
            owner,
            key,
        )

    async def release_idempotent(self, owner: str, key: str) -> None:
        owner = _owner(owner)
        # A finished key is kept: its answer must still replay.
        await self.db.execute(
            "DELETE FROM idempotency_keys"
            " WHERE owner = ? AND request_key = ? AND state = 'in_flight'",
            owner,
            key,
        )

    # --- rate limits and lockouts ---

    async def record_attempt(self, owner: str, kind: str, subject: str) -> None:
        owner = _owner(owner)
        await self.db.execute(_RECORD_ATTEMPT, owner, kind, subject, self._now())

    async def take_attempt(
        self, owner: str, kind: str, subject: str, since: datetime.datetime, limit: int
    ) -> bool:
        owner = _owner(owner)
        # Count and record in one transaction, under a lock per (owner, kind, subject):
        # counting first and recording later let a burst of requests (or two sidecars)
        # all see "under the limit". SQLite's BEGIN IMMEDIATE already serializes writers.
        async with self.db.transaction() as tx:
            return await self._take(tx, owner, Hold(kind, subject, since, limit))

    async def _take(self, tx: Transaction, owner: str, hold: Hold) -> bool:
        """Inside ``tx``: record the attempt unless the limit is reached; False if it is."""
        await tx.lock(_attempt_lock(owner, hold.kind, hold.subject))
        count = await tx.fetchval(_COUNT_ATTEMPTS, owner, hold.kind, hold.subject, hold.since)
        if int(count) >= hold.limit:
            return False
        await tx.execute(_RECORD_ATTEMPT, owner, hold.kind, hold.subject, self._now())
        return True

    async def release_attempt(self, owner: str, kind: str, subject: str) -> None:
        owner = _owner(owner)
        # Attempts of one (owner, kind, subject) only count: any one of them will do.
        await self.db.execute(
            "DELETE FROM attempts WHERE id = (SELECT max(id) FROM attempts"
            " WHERE owner = ? AND kind = ? AND subject = ?)",
            owner,
            kind,
            subject,
        )

    async def count_attempts(
        self, owner: str, kind: str, subject: str, since: datetime.datetime
    ) -> int:
        owner = _owner(owner)
        count = await self.db.fetchval(_COUNT_ATTEMPTS, owner, kind, subject, since)
        return int(count)

    async def clear_attempts(self, owner: str, kind: str, subject: str) -> None:
        owner = _owner(owner)
        await self.db.execute(
            "DELETE FROM attempts WHERE owner = ? AND kind = ? AND subject = ?",
            owner,
            kind,
            subject,
        )

    # --- audit trail ---

    async def audit(self, actor: str, action: str, object_id: str, details: dict[str, Any]) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, actor, action, object_id, details) VALUES (?, ?, ?, ?, ?)",
            self._now(),
            actor,
            action,
            object_id,
            rows.to_json(details),
        )

    async def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        found = await self.db.fetch(
            f"SELECT {rows.AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?",
            _limit(limit),
        )
        return [rows.audit_entry(row) for row in found]


_RECORD_ATTEMPT = "INSERT INTO attempts (owner, kind, subject, at) VALUES (?, ?, ?, ?)"
_COUNT_ATTEMPTS = (
    "SELECT count(*) FROM attempts WHERE owner = ? AND kind = ? AND subject = ? AND at >= ?"
)


def _attempt_lock(owner: str, kind: str, subject: str) -> int:
    """A 64-bit advisory-lock key for one rate limit (PostgreSQL wants a signed bigint)."""
    digest = hashlib.sha256("\0".join((owner, kind, subject)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
