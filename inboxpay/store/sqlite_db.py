"""The SQLite engine: one aiosqlite connection per Database, WAL, ``BEGIN IMMEDIATE`` writes.

One connection per process, guarded by an asyncio lock, is what Synapse does on SQLite too:
SQLite takes one writer at a time anyway, and a single connection cannot interleave two
transactions. Other processes on the same file wait on ``busy_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NoReturn

import aiosqlite

from inboxpay.store.database import (
    Connection,
    Database,
    Row,
    Transaction,
    UniqueViolation,
    check_params,
)
from inboxpay.store.model import StoreError

#: Declared column types whose values the driver turns back into Python values. SQLite
#: takes the first word of the declared type for this (``UTCTIME TEXT`` keeps TEXT affinity).
#: The converter registry is process-wide, hence names no other code would use.
TIMESTAMP_TYPE = "UTCTIME"
BOOL_TYPE = "BOOLFLAG"


def _parse_timestamp(raw: bytes) -> datetime.datetime:
    return datetime.datetime.fromisoformat(raw.decode("ascii"))


def _parse_bool(raw: bytes) -> bool:
    return raw not in (b"0", b"")


sqlite3.register_converter(TIMESTAMP_TYPE, _parse_timestamp)
sqlite3.register_converter(BOOL_TYPE, _parse_bool)


def format_timestamp(value: datetime.datetime) -> str:
    """Fixed-width UTC ISO text (microseconds always present), so that SQLite's text
    comparison orders timestamps correctly in ``WHERE at >= ?``."""
    return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def _adapt(args: Sequence[object]) -> tuple[object, ...]:
    check_params(args)
    return tuple(format_timestamp(a) if isinstance(a, datetime.datetime) else a for a in args)


_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: (.*)$")


async def _constraint_name(conn: aiosqlite.Connection, exc: sqlite3.IntegrityError) -> str:
    """Name the index behind a unique violation the way PostgreSQL would.

    SQLite only reports ``table.column, ...`` (or ``index 'name'`` for expression indexes),
    so look up the unique index over exactly those columns.
    """
    found = _UNIQUE_FAILED.search(str(exc))
    if found is None:
        return ""
    target = found.group(1).strip()
    if target.startswith("index "):
        return target[len("index ") :].strip("'\"")
    pairs = [part.strip().split(".", 1) for part in target.split(",")]
    table = pairs[0][0]
    columns = [pair[-1] for pair in pairs]
    async with conn.execute(
        'SELECT name, "unique", origin FROM pragma_index_list(?)', (table,)
    ) as cursor:
        indexes = list(await cursor.fetchall())
    for name, unique, origin in indexes:
        if not unique:
            continue
        async with conn.execute(
            "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (name,)
        ) as cursor:
            indexed = [r[0] for r in await cursor.fetchall()]
        if indexed != columns:
            continue
        if origin == "c":  # CREATE [UNIQUE] INDEX: the name is the same on both engines
            return str(name)
        if origin == "pk":
            return f"{table}_pkey"
        break
    if exc.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":  # INTEGER PRIMARY KEY: no index
        return f"{table}_pkey"
    return f"{table}_{'_'.join(columns)}_key"


async def _translate(conn: aiosqlite.Connection, exc: sqlite3.Error) -> NoReturn:
    """The one place SQLite errors become StoreErrors. SQLite's messages name tables,
    columns and constraints, never the bound values, so they are kept."""
    if isinstance(exc, sqlite3.IntegrityError) and exc.sqlite_errorname in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    ):
        raise UniqueViolation(await _constraint_name(conn, exc)) from None
    if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorname.startswith("SQLITE_BUSY"):
        raise StoreError("SQLite database is locked by another writer for too long") from exc
    raise StoreError(f"SQLite refused the statement: {exc}") from exc


class _SqliteConnection(Transaction):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _run(self, sql: str, args: Sequence[object], rows: bool) -> tuple[list[Row], int]:
        params = _adapt(args)
        try:
            async with self._conn.execute(sql, params) as cursor:
                if not rows:
                    return [], cursor.rowcount
                names = [column[0] for column in cursor.description]
                found = [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
                return found, cursor.rowcount
        except sqlite3.Error as e:
            await _translate(self._conn, e)

    async def execute(self, sql: str, *args: object) -> int:
        return (await self._run(sql, args, rows=False))[1]

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return (await self._run(sql, args, rows=True))[0]

    async def execute_script(self, sql: str) -> None:
        # Not sqlite3's executescript(): it COMMITs the open transaction first, and each
        # migration must apply atomically with its schema_version row.
        for statement in split_script(sql):
            await self.execute(statement)

    async def lock(self, key: int) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's single write lock."""


def split_script(sql: str) -> list[str]:
    """Complete statements of a script; ``sqlite3.complete_statement`` knows that the
    ``;`` inside a trigger's BEGIN ... END or a string literal does not end one."""
    statements: list[str] = []
    pending = ""
    *pieces, tail = sql.split(";")
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_code(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_code(pending + tail):
        raise ValueError("SQL script ends with an incomplete statement")
    return statements


def _has_code(sql: str) -> bool:
    lines = (line.split("--", 1)[0].strip() for line in sql.splitlines())
    return any(line.strip(";") for line in lines)


class SqliteDatabase(Database):
    engine = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[Connection]:
        async with self._lock:
            yield _SqliteConnection(self._conn)

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            tx = _SqliteConnection(self._conn)
            # IMMEDIATE takes the write lock now, waiting up to busy_timeout: a deferred
            # transaction that reads and then writes fails at once with SQLITE_BUSY when
            # another process wrote in between (the busy handler is not used for that).
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await self._rollback()
                raise
            try:
                await tx.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        if self._conn.in_transaction:
            # SQLite may have rolled back already (it does on some I/O errors).
            with contextlib.suppress(sqlite3.Error):
                await self._conn.execute("ROLLBACK")

    async def table_exists(self, name: str) -> bool:
        found = await self.fetchval(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name
        )
        return bool(found)

    async def close(self) -> None:
        await self._conn.close()


async def open_sqlite(path: Path, busy_timeout: float = 10.0) -> SqliteDatabase:
    """Open (creating the file if needed) a database whose directory exists."""
    if not path.parent.is_dir():
        raise StoreError(f"cannot open SQLite database {path}: its directory does not exist")
    try:
        conn = await aiosqlite.connect(
            path,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            detect_types=sqlite3.PARSE_DECLTYPES,
            timeout=busy_timeout,
        )
    except sqlite3.Error as e:
        raise StoreError(f"cannot open SQLite database {path}: {e}") from e
    try:
        mode = await _pragma(conn, "journal_mode = WAL")
        if str(mode).lower() != "wal":
            raise StoreError(f"SQLite database {path} cannot use WAL mode (got {mode!r})")
        await _pragma(conn, f"busy_timeout = {int(busy_timeout * 1000)}")
        await _pragma(conn, "foreign_keys = ON")
        # Payments are committed before the card is charged: survive a power cut, too.
        await _pragma(conn, "synchronous = FULL")
        # Deleted payment methods are overwritten, not left in free pages.
        await _pragma(conn, "secure_delete = ON")
    except BaseException:
        await conn.close()
        raise
    return SqliteDatabase(conn, path)


async def _pragma(conn: aiosqlite.Connection, pragma: str) -> object:
    try:
        async with conn.execute(f"PRAGMA {pragma}") as cursor:
            row = await cursor.fetchone()
    except sqlite3.Error as e:
        raise StoreError(f"SQLite refused PRAGMA {pragma}: {e}") from e
    return None if row is None else row[0]
