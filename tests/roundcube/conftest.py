"""Fixtures of the Roundcube suite (issue 14): thin wrappers over roundcube/world.py.

- ``rc``: DNS, the milter, Postfix, the sandbox processor, the sidecar, a private Dovecot
  and Roundcube under ``php -S``, for the module; at the end no process may have logged a
  traceback or card data, and Roundcube's error log must be empty;
- ``browser``: the shared headless Chromium of tests/browser/chromium.py.

Screenshots go to test-artifacts/roundcube/ at the repository's root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser.chromium import artifacts_dir, chromium
from e2e.session import milter_checked, work_dir
from playwright.sync_api import Browser
from sidecar.leaks import assert_no_secrets

from .world import RoundcubeWorld, running_roundcube


@pytest.fixture(scope="module")
def rc() -> Iterator[RoundcubeWorld]:
    with work_dir("inboxpay-roundcube-") as root:
        with running_roundcube(root) as world:
            yield world
            errors = world.roundcube.error_log()
        for process in (world.sidecar, world.sandbox):
            log = process.log_text()
            assert "Traceback" not in log, log[-3000:]
            assert_no_secrets(str(process.log_path), log.encode(), ())
        assert errors == "", f"Roundcube logged errors:\n{errors[-3000:]}"


@pytest.fixture(autouse=True)
def milter_was_called(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test when Postfix skipped the milter while it ran."""
    if "rc" not in request.fixturenames:
        yield
        return
    world: RoundcubeWorld = request.getfixturevalue("rc")
    with milter_checked(world.postfix, world.milter):
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as c:
        yield c.browser


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("roundcube")
