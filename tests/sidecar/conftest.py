"""Fixtures of the sidecar integration suite.

- ``shared_sandbox``: one sandbox processor process for the session (its own ``init``
  directory); tests count only the ledger entries made since their ``Env`` was created;
- ``store_url``: every test that takes it runs on SQLite and on PostgreSQL (a fresh
  database in the session's throwaway cluster, see tests/conftest.py);
- ``env``: ``inboxpay init`` in the test's tmp dir, storage and processor edited in;
- ``own_env``: the same, paying through its own sandbox, which the test starts and stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from store.pg import free_port, fresh_database

from inboxpay.dev.init import init
from tests.support.sandbox import Sandbox

from .harness import Env


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("shared-sandbox")
    config = init(root, sandbox_port=free_port())
    with Sandbox.of_config(config, root / "sandbox.log") as sandbox:
        yield sandbox


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///inboxpay.db"  # relative to the config file's folder
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    async with fresh_database(dsn) as url:
        yield url


@pytest_asyncio.fixture
async def env(tmp_path: Path, store_url: str, shared_sandbox: Sandbox) -> Env:
    return await Env.create(tmp_path, store_url, shared_sandbox)


@pytest_asyncio.fixture
async def own_env(tmp_path: Path, store_url: str) -> AsyncIterator[Env]:
    env = await Env.create(tmp_path, store_url, None)
    try:
        yield env
    finally:
        env.sandbox.stop()
