"""The tiny async database interface both engines implement (after Synapse's storage layer).

SQL is written once, with ``?`` placeholders, against this interface; each engine adapts
parameters, placeholders and driver errors in one place. Rows come back as plain dicts of
Python values: timestamps as timezone-aware UTC datetimes, booleans as bool, blobs as bytes.
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any

from inboxpay.store.model import WriteConflict

#: One result row: column name -> value.
Row = dict[str, Any]


class UniqueViolation(WriteConflict):
    """A unique index refused a write. ``constraint`` names it the PostgreSQL way
    (the index name, ``<table>_pkey``, ``<table>_<columns>_key``) on both engines, so the
    caller can turn it into the precise WriteConflict subclass."""

    def __init__(self, constraint: str) -> None:
        super().__init__(f"unique constraint {constraint or '?'} refused the write")
        self.constraint = constraint


class Connection(ABC):
    """Runs statements. Outside a transaction each call commits on its own."""

    @abstractmethod
    async def execute(self, sql: str, *args: object) -> int:
        """Run a statement; return the number of rows it changed."""

    @abstractmethod
    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: object) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))


class Transaction(Connection):
    """The connection handed out by :meth:`Database.transaction`."""

    @abstractmethod
    async def execute_script(self, sql: str) -> None:
        """Run several ``;``-separated statements (a migration file); no parameters."""

    @abstractmethod
    async def lock(self, key: int) -> None:
        """Serialize with every other process taking ``key`` until this transaction ends."""


#: The Database whose transaction the current task holds, to refuse statements that would
#: bypass it: on SQLite they would wait for the lock that task holds, forever.
_OPEN_TRANSACTION: ContextVar[Database | None] = ContextVar("inboxpay_transaction", default=None)


class Database(Connection):
    """A connection pool (PostgreSQL) or a shared connection (SQLite)."""

    engine: str  # "sqlite" | "postgresql"

    @abstractmethod
    def _autocommit(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for one statement that commits on its own."""

    @abstractmethod
    def _begin(self) -> AbstractAsyncContextManager[Transaction]:
        """A connection inside an open write transaction."""

    @abstractmethod
    async def table_exists(self, name: str) -> bool: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def execute(self, sql: str, *args: object) -> int:
        self._refuse_inside_transaction()
        async with self._autocommit() as conn:
            return await conn.execute(sql, *args)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        self._refuse_inside_transaction()
        async with self._autocommit() as conn:
            return await conn.fetch(sql, *args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction: commits when the block ends, rolls back on an exception.
        Inside it, run statements on the connection it yields, not on the Database."""
        self._refuse_inside_transaction()
        token = _OPEN_TRANSACTION.set(self)
        try:
            async with self._begin() as tx:
                yield tx
        finally:
            _OPEN_TRANSACTION.reset(token)

    def _refuse_inside_transaction(self) -> None:
        if _OPEN_TRANSACTION.get() is self:
            raise RuntimeError(
                "this task holds a transaction on this database: "
                "run statements on the transaction's connection"
            )


def check_params(args: Sequence[object]) -> None:
    """Refuse naive datetimes: which zone they mean is a guess, and a wrong guess moves
    rate-limit windows and reconciler cut-offs by hours."""
    for value in args:
        if isinstance(value, datetime.datetime) and value.utcoffset() is None:
            raise ValueError("naive datetime given to the store: use a timezone-aware one")
