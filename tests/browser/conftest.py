"""Fixtures of the browser suite: real headless Chromium (Debian's), the sandbox processor
and the sidecar as real processes, and a test webmail on another origin that embeds the
pane the way a real one does.

- ``world``: one configured world for the session (tests/browser/world.py);
- ``webmail``: the test webmail on an allowed origin and on a stranger's;
- ``make_pane``: opens a browser context (viewport, locale) on the webmail and records
  every request, console message and page error in it; at the end of the test it checks
  that nothing left 127.0.0.1 and that no card number or security code reached a URL,
  the console or browser storage.

Screenshots go to test-artifacts/pane/ at the repository's root. The code behind these
fixtures is in chromium.py, importable by other suites (tests/chain/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect

from .chromium import TIMEOUT_MS, PaneSession, artifacts_dir, chromium, finish, new_session
from .webmail import Webmail
from .world import World, running_world

__all__ = ["PaneSession"]  # the tests import it from here


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("browser")) as w:
        yield w


@pytest.fixture(scope="session")
def webmail(world: World) -> Iterator[Webmail]:
    server = Webmail(world.webmail_port, world.stranger_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Per module, not per session: while Playwright's sync API runs it holds this thread's
# event loop, and the suites that run after this one call asyncio.run().
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with chromium() as c:
        yield c.playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as c:
        yield c.browser


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return artifacts_dir("pane")


@pytest.fixture
def make_pane(
    browser: Browser, world: World, webmail: Webmail, artifacts: Path
) -> Iterator[Callable[..., PaneSession]]:
    sessions: list[PaneSession] = []

    def make(
        width: int = 360, height: int = 740, locale: str = "en-US", timezone: str = "UTC"
    ) -> PaneSession:
        session = new_session(browser, world, webmail, artifacts, width, height, locale, timezone)
        sessions.append(session)
        return session

    expect.set_options(timeout=TIMEOUT_MS)
    yield make
    finish(sessions)


@pytest.fixture
def pane(make_pane: Callable[..., PaneSession]) -> PaneSession:
    return make_pane()
