"""The database's own list of payment statuses, derived from store.model.PaymentStatus:
the CHECK constraint the migrations create, and the statuses the one-active-payment index
counts, on both engines."""

from __future__ import annotations

import re

import pytest

from inboxpay.store.model import ACTIVE_STATUSES, PaymentStatus, StoreError
from inboxpay.store.sql import SqlStore

from .samples import payment

pytestmark = pytest.mark.asyncio


def quoted(sql: str) -> list[str]:
    return re.findall(r"'([a-z_]+)'", sql)


def check_clause(statuses: tuple[str, ...] | type[PaymentStatus]) -> str:
    """The constraint as the migrations must write it, derived from the enum."""
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


async def _definitions(store: SqlStore) -> tuple[str, str]:
    """(the payments table's CHECK on status, the predicate of the one-active index)."""
    db = store.db
    if store.engine == "sqlite":
        table = await db.fetchval("SELECT sql FROM sqlite_master WHERE name = 'payments'")
        index = await db.fetchval(
            "SELECT sql FROM sqlite_master WHERE name = 'payments_one_active_per_invoice'"
        )
        return " ".join(str(table).split()), " ".join(str(index).split())
    check = await db.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'payments'::regclass AND contype = 'c'"
        " AND pg_get_constraintdef(oid) LIKE '%status%'"
    )
    index = await db.fetchval(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indexrelid = 'payments_one_active_per_invoice'::regclass"
    )
    return str(check), str(index)


async def test_the_check_constraint_is_the_enum(store: SqlStore) -> None:
    check, index = await _definitions(store)
    if store.engine == "sqlite":
        assert check_clause(PaymentStatus) in check.replace("( ", "(").replace(" )", ")")
        assert check_clause(ACTIVE_STATUSES) in index
    # PostgreSQL writes it back as status = ANY (ARRAY['pending'::text, ...]).
    assert quoted(check) == [s.value for s in PaymentStatus]
    assert quoted(index) == [s.value for s in ACTIVE_STATUSES]


async def test_the_database_takes_each_status_and_no_other(store: SqlStore) -> None:
    made = await store.create_payment(payment())
    for status in (PaymentStatus.REQUIRES_ACTION, PaymentStatus.SUCCEEDED):
        await store.update_payment(made.id, status)
    for status in (PaymentStatus.DECLINED, PaymentStatus.FAILED):
        other = await store.create_payment(payment(invoice_key=f"inv-{status}"))
        assert (await store.update_payment(other.id, status)).status == status
    with pytest.raises(ValueError, match="unknown payment status"):
        await store.update_payment(made.id, "refunded")
    # Past the store's own check, the database's: a raw write is refused too.
    with pytest.raises(StoreError, match=r"(?i)check"):
        await store.db.execute("UPDATE payments SET status = 'refunded' WHERE id = ?", made.id)
