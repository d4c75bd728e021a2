"""The migration runner's choice of files, and the SQLite script splitter."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxpay.store.migrate import load_migrations, migrations_folder
from inboxpay.store.sqlite_db import split_script


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def test_engine_variant_wins_over_plain_file(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        {
            "0001_init.sqlite.sql": "-- sqlite",
            "0001_init.postgres.sql": "-- postgres",
            "0002_index.sql": "-- both",
            "0003_tweak.sql": "-- plain",
            "0003_tweak.postgres.sql": "-- postgres only",
            "README.md": "not a migration",
        },
    )
    sqlite = load_migrations("sqlite", folder)
    postgres = load_migrations("postgresql", folder)
    assert [(m.version, m.name, m.sql) for m in sqlite] == [
        (1, "init", "-- sqlite"),
        (2, "index", "-- both"),
        (3, "tweak", "-- plain"),
    ]
    assert [m.sql for m in postgres] == ["-- postgres", "-- both", "-- postgres only"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_init.postgres.sql": ""}, "no file for sqlite"),
        ({"0001_a.sql": "", "0003_c.sql": ""}, "without gaps"),
        ({"0001_a.sql": "", "0001_b.sql": ""}, "two migrations are numbered 0001"),
        ({"1_init.sql": ""}, "is not named"),
        ({"0001_init.mysql.sql": ""}, "is not named"),
    ],
)
def test_bad_migration_folders(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_migrations("sqlite", write(tmp_path, files))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_shipped_migrations_load(engine: str) -> None:
    migrations = load_migrations(engine)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.sql.strip() for m in migrations)


def test_shipped_migrations_are_package_files() -> None:
    names = sorted(entry.name for entry in migrations_folder().iterdir())
    assert "0001_init.sqlite.sql" in names
    assert "0001_init.postgres.sql" in names


def test_split_script_keeps_triggers_whole() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (a TEXT DEFAULT 'x;y');
    CREATE TRIGGER t_no_delete BEFORE DELETE ON t
    BEGIN
        SELECT RAISE(ABORT, 'no; never');
    END;
    -- trailing comment
    """
    statements = split_script(script)
    assert len(statements) == 2
    assert statements[0].endswith("DEFAULT 'x;y');")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


def test_split_script_refuses_an_unfinished_statement() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        split_script("CREATE TABLE t (a TEXT); CREATE TABLE u (b TEXT)")
