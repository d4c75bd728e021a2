"""The one place that picks the storage engine, from the ``[store] url`` of the config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from inboxpay.store.api import Store
from inboxpay.store.database import Database
from inboxpay.store.sql import SqlStore

_EXAMPLES = (
    "sqlite:///inboxpay.db (relative to the config file's folder), "
    "sqlite:////var/lib/inboxpay/inboxpay.db (absolute) or "
    "postgresql://user:password@host:5432/dbname"
)


@dataclass(frozen=True)
class SqliteTarget:
    path: Path


@dataclass(frozen=True)
class PostgresTarget:
    dsn: str


def parse_url(url: str, base_dir: Path) -> SqliteTarget | PostgresTarget:
    """Check a store URL without connecting. Messages never repeat the URL: it may hold a
    password."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as e:
        raise ValueError(f"store URL cannot be parsed ({e}): use {_EXAMPLES}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc:
            raise ValueError(
                f"sqlite URL has a host ({parts.netloc!r}): a SQLite database is a file; "
                f"use {_EXAMPLES}"
            )
        if parts.query or parts.fragment:
            raise ValueError("sqlite URL takes no ?query or #fragment")
        # sqlite:///x.db -> path "/x.db" (relative x.db); sqlite:////abs -> "//abs" (/abs).
        relative = unquote(parts.path)[1:]
        if not relative or relative.endswith("/"):
            raise ValueError(f"sqlite URL names no database file: use {_EXAMPLES}")
        path = Path(relative)
        return SqliteTarget(path if path.is_absolute() else base_dir / path)
    if scheme in ("postgresql", "postgres"):
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError("postgresql URL has an invalid port") from None
        if not parts.path.strip("/"):
            raise ValueError(f"postgresql URL names no database: use {_EXAMPLES}")
        return PostgresTarget(url.strip())
    shown = f"scheme {scheme!r}" if scheme else "no scheme"
    raise ValueError(f"store URL has {shown}: use {_EXAMPLES}")


async def open_database(url: str, base_dir: Path) -> Database:
    target = parse_url(url, base_dir)
    if isinstance(target, SqliteTarget):
        from inboxpay.store.sqlite_db import open_sqlite

        return await open_sqlite(target.path)
    # Imported here: asyncpg is the optional "postgres" extra.
    from inboxpay.store.postgres_db import open_postgres

    return await open_postgres(target.dsn)


async def open_store(url: str, base_dir: Path) -> Store:
    """Connect to the database named by ``url``; call ``migrate()`` before use.

    ``base_dir`` is the folder of the config file, which relative SQLite paths are under.
    Raises ValueError for a bad URL, StoreError when the database cannot be reached.
    """
    return SqlStore(await open_database(url, base_dir))
