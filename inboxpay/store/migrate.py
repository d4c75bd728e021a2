"""Numbered schema migrations: ``migrations/NNNN_name[.sqlite|.postgres].sql``.

An engine takes its own variant of a version when there is one, else the plain file. Each
migration runs in its own transaction together with its ``schema_version`` row, so a
failure leaves the schema at the previous version. Two processes may migrate at once:
every transaction first takes the migration lock (a PostgreSQL advisory lock; SQLite's
write lock), then checks what is already applied.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from inboxpay.store.database import Database
from inboxpay.store.model import StoreError

#: "inboxpay" in ASCII: the advisory lock key every InboxPay process migrates under.
MIGRATION_LOCK = 0x696E626F78706179

_FILE_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<variant>sqlite|postgres))?\.sql$"
)
_VARIANT = {"sqlite": "sqlite", "postgresql": "postgres"}

_CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_folder() -> Traversable:
    return files("inboxpay.store") / "migrations"


def load_migrations(engine: str, folder: Traversable | None = None) -> list[Migration]:
    """The migrations for ``engine``, in order; refuses gaps, clashes and stray files so
    that a bad merge is caught before it touches a database."""
    variant = _VARIANT.get(engine)
    if variant is None:
        raise ValueError(f"no migrations for engine {engine!r}")
    found: dict[int, dict[str | None, Traversable]] = {}
    names: dict[int, str] = {}
    for entry in (migrations_folder() if folder is None else folder).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise ValueError(
                f"migration file {entry.name!r} is not named NNNN_name[.sqlite|.postgres].sql"
            )
        version = int(match["version"])
        if names.setdefault(version, match["name"]) != match["name"]:
            raise ValueError(f"two migrations are numbered {version:04d}")
        found.setdefault(version, {})[match["variant"]] = entry
    if sorted(found) != list(range(1, len(found) + 1)):
        raise ValueError(
            f"migration numbers must run 0001, 0002, ... without gaps: {sorted(found)}"
        )
    migrations = []
    for version in sorted(found):
        chosen = found[version].get(variant) or found[version].get(None)
        if chosen is None:
            raise ValueError(
                f"migration {version:04d} has no file for {engine}: "
                f"add {version:04d}_{names[version]}.{variant}.sql or a plain .sql"
            )
        migrations.append(Migration(version, names[version], chosen.read_text("utf-8")))
    return migrations


async def schema_version(db: Database) -> int:
    """The newest applied migration, 0 on an empty database."""
    if not await db.table_exists("schema_version"):
        return 0
    return int(await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(db: Database, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is pending; return the versions this call applied (others may have been
    applied meanwhile by another process)."""
    if migrations is None:
        migrations = load_migrations(db.engine)
    known = max((m.version for m in migrations), default=0)
    current = await schema_version(db)
    if current > known:
        raise StoreError(
            f"the database is at schema version {current}, newer than this InboxPay "
            f"knows ({known}): upgrade InboxPay"
        )
    applied: list[int] = []
    for migration in migrations:
        if migration.version <= current:
            continue
        async with db.transaction() as tx:
            await tx.lock(MIGRATION_LOCK)
            await tx.execute(_CREATE_SCHEMA_VERSION)
            # Under the lock: another process may have applied it since we looked.
            done = await tx.fetchval(
                "SELECT count(*) FROM schema_version WHERE version = ?", migration.version
            )
            if done:
                continue
            await tx.execute_script(migration.sql)
            await tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                migration.version,
                migration.name,
                datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            )
        applied.append(migration.version)
    return applied
