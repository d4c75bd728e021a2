"""Session fixtures: dnsmasq, the milter and a private Postfix, all on loopback.

Everything lives in one temporary directory (kept when INBOXPAY_E2E_KEEP=1, for
reading the logs) and is stopped at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .dnsserver import DnsServer
from .harness import Mta
from .milterproc import CardKeys, MilterProcess
from .postfix import PrivatePostfix, milter_warnings
from .procs import free_port, require_program
from .world import AUTHSERV_ID, RECIPIENTS, DkimKey, new_dkim_keys, zones


@pytest.fixture(scope="session")
def e2e_dir() -> Iterator[Path]:
    # Fail (never skip) before starting anything when the real software is missing.
    require_program("postfix", "apt-get install postfix")
    require_program("dnsmasq", "apt-get install dnsmasq-base")
    # Not pytest's tmp_path: its parents are mode 0700, and Postfix daemons and
    # the virtual agent run as other users that must reach the queue and Maildirs.
    root = Path(tempfile.mkdtemp(prefix="inboxpay-e2e-"))
    root.chmod(0o755)
    yield root
    if os.environ.get("INBOXPAY_E2E_KEEP") == "1":
        print(f"\ne2e files kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dkim_keys() -> dict[str, DkimKey]:
    return new_dkim_keys()


@pytest.fixture(scope="session")
def dns_server(e2e_dir: Path, dkim_keys: dict[str, DkimKey]) -> Iterator[DnsServer]:
    server = DnsServer(e2e_dir, free_port(), zones(dkim_keys))
    try:
        server.start()
        # A DKIM key is longer than one character-string: proves the split works.
        server.check_txt(dkim_keys["post.xero.test"].record_name)
        server.check_txt("post.xero.test")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def milter(e2e_dir: Path, dns_server: DnsServer) -> Iterator[tuple[MilterProcess, CardKeys]]:
    process = MilterProcess(e2e_dir, free_port(), AUTHSERV_ID, dns_server.port)
    try:
        yield process, process.start()
    finally:
        process.stop()


@pytest.fixture(scope="session")
def postfix(e2e_dir: Path, milter: tuple[MilterProcess, CardKeys]) -> Iterator[PrivatePostfix]:
    instance = PrivatePostfix(e2e_dir, free_port(), milter[0].port, AUTHSERV_ID, RECIPIENTS)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def mta(
    postfix: PrivatePostfix,
    milter: tuple[MilterProcess, CardKeys],
    dkim_keys: dict[str, DkimKey],
) -> Mta:
    return Mta(postfix, milter[1], dkim_keys)


@pytest.fixture(autouse=True)
def milter_was_called(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test that sent mail when Postfix skipped the milter.

    With milter_default_action = accept an unreachable or failing milter only
    leaves a warning in the log, and the mail is delivered untouched.
    """
    if "mta" not in request.fixturenames:
        # A harness self-test: no mail, and no reason to start Postfix for it.
        yield
        return
    postfix: PrivatePostfix = request.getfixturevalue("postfix")
    milter: tuple[MilterProcess, CardKeys] = request.getfixturevalue("milter")
    start = postfix.log_size()
    yield
    warnings = milter_warnings(postfix.log_since(start))
    if warnings:
        pytest.fail("Postfix skipped the milter:\n" + "\n".join(warnings), pytrace=False)
    milter[0].check_alive()
