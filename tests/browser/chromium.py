"""Real headless Chromium (Debian's) for the suites that drive the pane, as plain code that
any test folder can import (tests/browser/conftest.py and tests/chain/ wrap it in fixtures).

- ``chromium()``: Playwright for Python with Debian's ``/usr/bin/chromium``, one per
  process however many suites ask (Playwright's sync API cannot run two at once);
- ``PaneSession``: one browser context on a page that embeds the pane, recording every
  request, console message and page error; ``check()`` asserts that nothing left
  127.0.0.1 and that no card number or security code reached a URL, the console, browser
  storage or a form field;
- ``new_session()`` / ``finish()``: open such a context, and check and close them all.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    FrameLocator,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

from .webmail import Case, Webmail
from .world import World

CHROMIUM = "/usr/bin/chromium"
# Flags that keep a headless Chromium off the network and quiet (no update, sync,
# safe-browsing or QUIC traffic): the suites assert that nothing leaves 127.0.0.1.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots of each suite go to a folder of their own under this one.
ARTIFACTS_ROOT = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Chromium:
    playwright: Playwright
    browser: Browser


@dataclass
class _Shared:
    users: int = 0
    chromium: Chromium | None = None


_shared = _Shared()


@contextmanager
def chromium() -> Iterator[Chromium]:
    """Playwright and Debian's headless Chromium, shared by every caller in this process.

    Fails (never skips) when Chromium is missing."""
    if _shared.chromium is None:
        if shutil.which(CHROMIUM) is None:
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
        playwright = sync_playwright().start()
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except BaseException:
            playwright.stop()
            raise
        _shared.chromium = Chromium(playwright, browser)
    _shared.users += 1
    try:
        yield _shared.chromium
    finally:
        _shared.users -= 1
        if _shared.users == 0:
            shared = _shared.chromium
            _shared.chromium = None
            try:
                shared.browser.close()
            finally:
                shared.playwright.stop()


def artifacts_dir(name: str) -> Path:
    path = ARTIFACTS_ROOT / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bounded(secret: str) -> re.Pattern[str]:
    # A security code is three digits: only count it when it stands alone, not inside
    # a hex payment id or a port number.
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])")


@dataclass
class PaneSession:
    """One browser context on the test webmail, with everything it did recorded."""

    world: World
    webmail: Webmail
    context: BrowserContext
    page: Page
    artifacts: Path
    requests: list[Request] = field(default_factory=list)
    console: list[tuple[str, str, str]] = field(default_factory=list)  # type, text, url
    errors: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    csp_refusal_expected: bool = False
    _recorded: list[Page] = field(default_factory=list)

    def record(self, page: Page) -> None:
        if page in self._recorded:
            return  # the context's "page" event and the fixture may both hand it over
        self._recorded.append(page)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))

    def on_request(self, request: Request) -> None:
        self.requests.append(request)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append((message.type, message.text, message.location.get("url", "")))

    # --- opening the pane ---

    def open(
        self,
        card: str,
        token: str,
        *,
        manual: bool = False,
        stranger: bool = False,
        page: str = "webmail",
    ) -> FrameLocator:
        case = Case(
            card=card,
            token=token,
            pane_url=self.world.pane_url,
            pane_origin=self.world.sidecar,
            manual=manual,
        )
        case_id = self.webmail.add(case)
        if stranger:
            frame_url = self.webmail.url(case_id, "stranger-frame", stranger=True)
            case_id = self.webmail.add(dataclasses.replace(case, stranger_url=frame_url))
        self.page.goto(self.webmail.url(case_id, page, stranger=page != "webmail"))
        return self.frame

    @property
    def frame(self) -> FrameLocator:
        return self.page.frame_locator("#pane")

    def pane_frame(self) -> Frame:
        for frame in self.page.frames:
            if frame.url.startswith(self.world.pane_url):
                return frame
        raise AssertionError("the pane frame is not loaded")

    def received(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.page.evaluate("window.received")
        return messages

    def wait_message(self, kind: str) -> dict[str, Any]:
        self.page.wait_for_function(
            "(kind) => window.received.some((m) => m.type === kind)", arg=kind
        )
        return next(m for m in self.received() if m["type"] == kind)

    def shot(self, name: str) -> None:
        """The whole pane, however long, as the embedding page shows it at this width."""
        height = self.pane_frame().evaluate("document.documentElement.scrollHeight")
        self.page.evaluate(
            "(h) => { document.getElementById('pane').style.height = h + 'px'; }", height
        )
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)
        self.page.evaluate("() => { document.getElementById('pane').style.height = ''; }")

    # --- what must never happen ---

    def check(self) -> None:
        urls = [r.url for r in self.requests]
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme in ("http", "https", "ws", "wss"):
                assert parts.hostname == "127.0.0.1", f"a request left 127.0.0.1: {url}"
        patterns = [_bounded(s) for s in self.secrets]
        pages_urls = [f.url for p in self.context.pages for f in p.frames]
        for text in [*urls, *pages_urls, *(f"{c[1]} {c[2]}" for c in self.console)]:
            for pattern in patterns:
                assert not pattern.search(text), f"a secret leaked into {text!r}"
        for p in self.context.pages:
            for frame in p.frames:
                if not frame.url.startswith(self.world.sidecar):
                    continue
                stored = frame.evaluate(
                    """() => ({
                        local: localStorage.length,
                        session: sessionStorage.length,
                        cookie: document.cookie,
                        inputs: [...document.querySelectorAll('input')].map((i) => i.value),
                    })"""
                )
                assert stored["local"] == 0 and stored["session"] == 0, stored
                assert stored["cookie"] == "", stored
                for value in stored["inputs"]:
                    for pattern in patterns:
                        assert not pattern.search(value), "a secret stayed in a form field"
        assert not self.errors, self.errors
        if not self.csp_refusal_expected:
            refusals = [c for c in self.console if "Content Security Policy" in c[1]]
            assert not refusals, refusals


def new_session(
    browser: Browser,
    world: World,
    webmail: Webmail,
    artifacts: Path,
    width: int = 360,
    height: int = 740,
    locale: str = "en-US",
    timezone: str = "UTC",
) -> PaneSession:
    """A fresh browser context (viewport, locale, time zone) with everything recorded."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale=locale, timezone_id=timezone
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    session = PaneSession(world, webmail, context, page, artifacts)
    context.on("request", session.on_request)
    context.on("page", session.record)
    session.record(page)
    expect.set_options(timeout=TIMEOUT_MS)
    return session


def finish(sessions: Iterable[PaneSession]) -> None:
    """Check every session for leaks, then close them all (even when a check fails)."""
    sessions = list(sessions)
    try:
        for session in sessions:
            session.check()
    finally:
        for session in sessions:
            session.context.close()
