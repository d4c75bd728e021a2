"""Choosing the engine from the store URL, and what a bad URL or an unreachable server says."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxpay.store.engine import PostgresTarget, SqliteTarget, open_store, parse_url
from inboxpay.store.model import StoreError
from inboxpay.store.sql import SqlStore

from .pg import free_port

BASE = Path("/etc/inboxpay")


def test_sqlite_relative_to_config_folder() -> None:
    assert parse_url("sqlite:///inboxpay.db", BASE) == SqliteTarget(BASE / "inboxpay.db")
    assert parse_url("sqlite:///data/x.db", BASE) == SqliteTarget(BASE / "data/x.db")


def test_sqlite_absolute() -> None:
    target = parse_url("sqlite:////var/lib/inboxpay/inboxpay.db", BASE)
    assert target == SqliteTarget(Path("/var/lib/inboxpay/inboxpay.db"))


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
def test_postgresql_schemes(scheme: str) -> None:
    url = f"{scheme}://user:pass@db.internal:5433/inboxpay"
    assert parse_url(url, BASE) == PostgresTarget(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:s3cret@host/db", "scheme 'mysql'"),
        ("inboxpay.db", "no scheme"),
        ("sqlite://host/inboxpay.db", "has a host"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///db?mode=ro", "takes no"),
        ("postgresql://u:s3cret@host:99999/db", "invalid port"),
        ("postgresql://u:s3cret@host:5432", "names no database"),
    ],
)
def test_bad_urls_are_named_without_secrets(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_url(url, BASE)
    assert "s3cret" not in str(caught.value)


@pytest.mark.asyncio
async def test_open_store_sqlite_creates_the_file(tmp_path: Path) -> None:
    store = await open_store("sqlite:///inboxpay.db", tmp_path)
    try:
        assert store.engine == "sqlite"
        assert isinstance(store, SqlStore)
        await store.ping()
        assert (tmp_path / "inboxpay.db").is_file()
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_sqlite_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await open_store("sqlite:///missing/inboxpay.db", tmp_path)


@pytest.mark.asyncio
async def test_unreachable_postgresql_names_server_not_password(tmp_path: Path) -> None:
    url = f"postgresql://inboxpay:s3cret@127.0.0.1:{free_port()}/inboxpay"
    with pytest.raises(StoreError, match="cannot reach PostgreSQL at") as caught:
        await open_store(url, tmp_path)
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
