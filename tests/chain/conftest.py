"""Fixtures of the whole-chain suite (issue 4): thin wrappers over chain/world.py and the
harnesses it reuses.

- ``chain``: dnsmasq, the milter, Postfix, the sandbox processor, the sidecar on a fresh
  PostgreSQL database of the session's throwaway cluster (tests/conftest.py), and the test
  webmail, for the module; its logs are scanned for card data when it stops;
- ``make_session``: a recorded Chromium context (tests/browser/chromium.py) whose leak
  checks run at the end of the test;
- every test that uses ``chain`` fails when Postfix skipped the milter meanwhile.

Screenshots go to test-artifacts/chain/ at the repository's root.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from browser.chromium import PaneSession, artifacts_dir, chromium, finish, new_session
from e2e.session import milter_checked, work_dir
from playwright.sync_api import Browser
from sidecar.leaks import assert_no_secrets
from store.pg import fresh_database

from .world import Chain, running_chain

T = TypeVar("T")


@pytest.fixture(scope="module")
def chain_dir() -> Iterator[Path]:
    with work_dir("inboxpay-chain-") as root:
        yield root


@pytest.fixture(scope="module")
def storage_url(pg_dsn: str) -> Iterator[str]:
    """A fresh database in the session's PostgreSQL cluster, dropped afterwards.

    Its coroutines run on a loop of their own in another thread: Playwright's sync API
    may already hold this thread's loop (the browser suite shares one Chromium)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="chain-db", daemon=True)
    thread.start()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    try:
        database = fresh_database(pg_dsn)
        url = run(database.__aenter__())
        try:
            yield url
        finally:
            run(database.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def chain(chain_dir: Path, storage_url: str) -> Iterator[Chain]:
    with running_chain(chain_dir, storage_url) as c:
        yield c
    # Every process has stopped and flushed its log: none may hold card data.
    for process in (c.sidecar, c.sandbox):
        log = process.log_text()
        assert "Traceback" not in log, log[-3000:]
        assert_no_secrets(str(process.log_path), log.encode(), ())
    assert_no_secrets(str(c.milter.log), c.milter.log.read_bytes(), ())


@pytest.fixture(autouse=True)
def milter_was_called(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test of the chain when Postfix skipped the milter while it ran."""
    if "chain" not in request.fixturenames:
        yield
        return
    c: Chain = request.getfixturevalue("chain")
    with milter_checked(c.postfix, c.milter):
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as c:
        yield c.browser


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("chain")


@pytest.fixture
def make_session(
    browser: Browser, chain: Chain, artifacts: Path
) -> Iterator[Callable[..., PaneSession]]:
    sessions: list[PaneSession] = []

    def make(width: int = 360, height: int = 740) -> PaneSession:
        session = new_session(browser, chain.world, chain.webmail, artifacts, width, height)
        sessions.append(session)
        return session

    yield make
    finish(sessions)
