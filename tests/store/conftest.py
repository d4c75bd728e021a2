"""Fixtures of the store tests: one parametrized ``store`` runs every contract test on
SQLite and on PostgreSQL. The cluster logic lives in pg.py, so that the session fixture can
move to a top-level conftest unchanged."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from inboxpay.store.engine import open_database
from inboxpay.store.sql import SqlStore

from .pg import fresh_database
from .samples import START


class FakeClock:
    """The store's clock, moved by hand: windows and takeovers without sleeping."""

    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> datetime.datetime:
        self.now += datetime.timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each engine (PostgreSQL: a new database per test)."""
    if request.param == "sqlite":
        yield "sqlite:///inboxpay.db"  # relative: tests open it with base_dir=tmp_path
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    async with fresh_database(dsn) as url:
        yield url


StoreFactory = Callable[..., Awaitable[SqlStore]]


@pytest_asyncio.fixture
async def open_stores(
    store_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StoreFactory]:
    """Open as many stores on the test's database as a test wants (as separate sidecar
    processes would); all are closed at the end."""
    opened: list[SqlStore] = []

    async def open_one(*, migrated: bool = True) -> SqlStore:
        store = SqlStore(await open_database(store_url, tmp_path), clock=clock)
        opened.append(store)
        if migrated:
            await store.migrate()
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest_asyncio.fixture
async def store(open_stores: StoreFactory) -> SqlStore:
    """A fresh, migrated store of each engine."""
    return await open_stores()
