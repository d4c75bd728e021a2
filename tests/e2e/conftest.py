"""Session fixtures: dnsmasq, the milter and a private Postfix, all on loopback.

Everything lives in one temporary directory (kept when INBOXPAY_E2E_KEEP=1, for
reading the logs) and is stopped at the end of the session. The logic is in
session.py, which other suites (tests/chain/) reuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .dnsserver import DnsServer
from .harness import Mta
from .milterproc import CardKeys, MilterProcess
from .postfix import PrivatePostfix
from .procs import free_port
from .session import milter_checked, running_dns, running_milter, running_postfix, work_dir
from .world import AUTHSERV_ID, RECIPIENTS, DkimKey, new_dkim_keys


@pytest.fixture(scope="session")
def e2e_dir() -> Iterator[Path]:
    with work_dir("inboxpay-e2e-") as root:
        yield root


@pytest.fixture(scope="session")
def dkim_keys() -> dict[str, DkimKey]:
    return new_dkim_keys()


@pytest.fixture(scope="session")
def dns_server(e2e_dir: Path, dkim_keys: dict[str, DkimKey]) -> Iterator[DnsServer]:
    with running_dns(e2e_dir, dkim_keys) as server:
        yield server


@pytest.fixture(scope="session")
def milter(e2e_dir: Path, dns_server: DnsServer) -> Iterator[tuple[MilterProcess, CardKeys]]:
    process = MilterProcess(
        e2e_dir, free_port(), AUTHSERV_ID, dns_server.port, metrics_port=free_port()
    )
    with running_milter(process) as card_keys:
        yield process, card_keys


@pytest.fixture(scope="session")
def postfix(e2e_dir: Path, milter: tuple[MilterProcess, CardKeys]) -> Iterator[PrivatePostfix]:
    instance = PrivatePostfix(e2e_dir, free_port(), milter[0].port, AUTHSERV_ID, RECIPIENTS)
    with running_postfix(instance):
        yield instance


@pytest.fixture(scope="session")
def mta(
    postfix: PrivatePostfix,
    milter: tuple[MilterProcess, CardKeys],
    dkim_keys: dict[str, DkimKey],
) -> Mta:
    return Mta(postfix, milter[1], dkim_keys)


@pytest.fixture(autouse=True)
def milter_was_called(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test that sent mail when Postfix skipped the milter (see milter_checked)."""
    if "mta" not in request.fixturenames:
        # A harness self-test: no mail, and no reason to start Postfix for it.
        yield
        return
    postfix: PrivatePostfix = request.getfixturevalue("postfix")
    milter: tuple[MilterProcess, CardKeys] = request.getfixturevalue("milter")
    with milter_checked(postfix, milter[0]):
        yield
