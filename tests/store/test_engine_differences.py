"""What each engine does on its own: placeholders, error translation, engine-only triggers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from inboxpay.store.engine import open_database
from inboxpay.store.model import StoreError
from inboxpay.store.postgres_db import numbered_placeholders
from inboxpay.store.sql import SqlStore

from .pg import fresh_database

CARD = "4111111111111111"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ?", "SELECT $1"),
        ("UPDATE t SET a = ?, b = ? WHERE c = ?", "UPDATE t SET a = $1, b = $2 WHERE c = $3"),
        ("SELECT '?', \"col?\", ? -- why?\n, ?", "SELECT '?', \"col?\", $1 -- why?\n, $2"),
        ("SELECT 'it''s ?' /* ? */, ?", "SELECT 'it''s ?' /* ? */, $1"),
    ],
)
def test_numbered_placeholders(sql: str, expected: str) -> None:
    assert numbered_placeholders(sql) == expected


@pytest_asyncio.fixture
async def pg_store(pg_dsn: str, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with fresh_database(pg_dsn) as url:
        store = SqlStore(await open_database(url, tmp_path))
        await store.migrate()
        yield store
        await store.close()


def assert_hidden(error: BaseException) -> None:
    """Neither the message nor the exception chain shows the bound value."""
    seen: BaseException | None = error
    while seen is not None:
        assert CARD not in str(seen)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


@pytest.mark.asyncio
async def test_postgresql_data_errors_hide_values(pg_store: SqlStore) -> None:
    # Server side: PostgreSQL quotes the bad input in its message.
    with pytest.raises(StoreError, match="SQLSTATE 22") as caught:
        await pg_store.db.fetchval("SELECT CAST(CAST(? AS text) AS integer)", CARD + "x")
    assert_hidden(caught.value)
    # Client side: asyncpg quotes an argument that does not fit the column type.
    with pytest.raises(StoreError, match="SQLSTATE 22") as caught:
        await pg_store.db.fetchval("SELECT CAST(? AS integer)", CARD)
    assert_hidden(caught.value)
    # Integrity errors: PostgreSQL puts the failing row in DETAIL.
    with pytest.raises(StoreError, match="NotNullViolationError") as caught:
        await pg_store.db.execute(
            "INSERT INTO orgs (domain, pay_enabled, updated_at, updated_by)"
            " VALUES (?, ?, now(), NULL)",
            CARD,
            True,
        )
    assert_hidden(caught.value)


@pytest.mark.asyncio
async def test_postgresql_audit_log_refuses_truncate(pg_store: SqlStore) -> None:
    await pg_store.audit("alice", "x", "y", {})
    with pytest.raises(StoreError, match="append-only"):
        await pg_store.db.execute("TRUNCATE audit_log")
    assert len(await pg_store.audit_entries()) == 1


@pytest.mark.asyncio
async def test_postgresql_connection_killed(pg_dsn: str, pg_store: SqlStore) -> None:
    """A pooled connection the server ended is a StoreError (never a raw driver error),
    and the pool recovers with a new connection."""
    await pg_store.ping()
    admin = await asyncpg.connect(pg_dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname <> current_database() AND datname LIKE 'inboxpay_t_%'"
        )
    finally:
        await admin.close()
    assert killed >= 1
    try:
        await pg_store.ping()
    except StoreError as e:
        assert "PostgreSQL" in str(e)
    await pg_store.ping()


@pytest.mark.asyncio
async def test_sqlite_errors_keep_values_out(tmp_path: Path) -> None:
    store = SqlStore(await open_database("sqlite:///x.db", tmp_path))
    try:
        await store.migrate()
        with pytest.raises(StoreError, match="NOT NULL") as caught:
            await store.db.execute(
                "INSERT INTO orgs (domain, pay_enabled, updated_at, updated_by)"
                " VALUES (?, 1, '2030-01-01', NULL)",
                CARD,
            )
        assert_hidden(caught.value)
    finally:
        await store.close()
