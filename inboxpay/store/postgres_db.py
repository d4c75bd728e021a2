"""The PostgreSQL engine: an asyncpg pool; ``?`` placeholders become ``$n`` here only.

asyncpg is an optional dependency (the ``postgres`` extra): only engine.py imports this
module, and only for a postgresql:// URL.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn, TypeAlias
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from inboxpay.store.database import (
    Connection,
    Database,
    Row,
    Transaction,
    UniqueViolation,
    check_params,
)
from inboxpay.store.model import StoreError

# asyncpg's classes are generic in its type stubs only, hence a string.
_PooledConnection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

#: Errors from the driver, the server or the socket below them.
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a pooled connection the server closed meanwhile
    OSError,
)

# String literals, quoted identifiers and comments are copied as they are, so that a ``?``
# inside them is not taken for a placeholder. (No dollar-quoting: query SQL has none, and
# migration scripts go through execute_script, which converts nothing.)
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\?""", re.DOTALL)


@functools.lru_cache(maxsize=1024)
def numbered_placeholders(sql: str) -> str:
    """``WHERE a = ? AND b = ?`` -> ``WHERE a = $1 AND b = $2``."""
    count = 0

    def renumber(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    return _TOKENS.sub(renumber, sql)


def redacted(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "postgresql://<unparsable URL>"
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{host}:{port}{parts.path}"


def translate(exc: BaseException, where: str) -> NoReturn:
    """The one place asyncpg errors become StoreErrors.

    Never puts a bound value in the message: PostgreSQL quotes the offending value in data
    errors (SQLSTATE class 22, e.g. ``invalid input syntax for type integer: "..."``) and in
    integrity errors' DETAIL, and asyncpg does in its argument errors (raised as SQLSTATE
    22000). Those are reported by class and SQLSTATE only, without chaining the original.
    """
    if isinstance(exc, asyncpg.UniqueViolationError):
        raise UniqueViolation(exc.constraint_name or "") from None
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or "?"
        name = type(exc).__name__
        if state.startswith(("22", "23")):
            constraint = f" on {exc.constraint_name}" if exc.constraint_name else ""
            raise StoreError(
                f"PostgreSQL refused the statement: {name}{constraint} (SQLSTATE {state})"
            ) from None
        if state.startswith(("08", "57P", "53")):  # connection, shutdown, resources
            raise StoreError(f"PostgreSQL at {where} is unavailable: {exc.message}") from exc
        raise StoreError(f"PostgreSQL error {name} (SQLSTATE {state}): {exc.message}") from exc
    if isinstance(exc, asyncpg.ClientConfigurationError):
        raise StoreError(f"PostgreSQL URL or settings refused: {exc}") from None
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        # A client-side argument error (it quotes the argument).
        raise StoreError("a query argument does not fit its column type (not shown)") from None
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError)):
        raise StoreError(f"PostgreSQL client error at {where}: {exc}") from exc
    if isinstance(exc, TimeoutError):
        raise StoreError(f"PostgreSQL at {where} did not answer in time") from exc
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise StoreError(f"cannot reach PostgreSQL at {where}: {reason}") from exc
    raise exc


def _rowcount(status: str) -> int:
    """asyncpg answers ``INSERT 0 1`` / ``UPDATE 3``: the count is the last word."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresConnection(Transaction):
    def __init__(self, conn: _PooledConnection, where: str) -> None:
        self._conn = conn
        self._where = where

    async def execute(self, sql: str, *args: object) -> int:
        check_params(args)
        try:
            status = await self._conn.execute(numbered_placeholders(sql), *args)
        except DRIVER_ERRORS as e:
            translate(e, self._where)
        return _rowcount(status)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        check_params(args)
        try:
            records = await self._conn.fetch(numbered_placeholders(sql), *args)
        except DRIVER_ERRORS as e:
            translate(e, self._where)
        return [dict(record.items()) for record in records]

    async def execute_script(self, sql: str) -> None:
        try:
            await self._conn.execute(sql)  # no arguments: the simple protocol runs them all
        except DRIVER_ERRORS as e:
            translate(e, self._where)

    async def lock(self, key: int) -> None:
        await self.execute("SELECT pg_advisory_xact_lock(?)", key)


class PostgresDatabase(Database):
    engine = "postgresql"

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], where: str) -> None:
        self._pool = pool
        self.where = where

    async def _acquire(self) -> _PooledConnection:
        try:
            return await self._pool.acquire()
        except DRIVER_ERRORS as e:
            translate(e, self.where)

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[Connection]:
        conn = await self._acquire()
        try:
            yield _PostgresConnection(conn, self.where)
        finally:
            await self._pool.release(conn)

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[Transaction]:
        conn = await self._acquire()
        try:
            transaction = conn.transaction()
            try:
                await transaction.start()
            except DRIVER_ERRORS as e:
                translate(e, self.where)
            try:
                yield _PostgresConnection(conn, self.where)
            except BaseException:
                # A broken connection cannot roll back; the pool discards it on release.
                with contextlib.suppress(*DRIVER_ERRORS):
                    await transaction.rollback()
                raise
            try:
                await transaction.commit()
            except DRIVER_ERRORS as e:
                translate(e, self.where)
        finally:
            await self._pool.release(conn)

    async def table_exists(self, name: str) -> bool:
        found = await self.fetchval("SELECT to_regclass(?) IS NOT NULL", name)
        return bool(found)

    async def close(self) -> None:
        await self._pool.close()


async def open_postgres(
    dsn: str, *, max_size: int = 10, command_timeout: float = 60.0
) -> PostgresDatabase:
    where = redacted(dsn)
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max_size, command_timeout=command_timeout, timeout=10.0
        )
    except DRIVER_ERRORS as e:
        translate(e, where)
    return PostgresDatabase(pool, where)
