"""One installation in a temporary root for the module, and a DNS world for its milter.

Nothing here touches the host's /etc: the user, the directories, the keys and the
units all live under one temporary root (kept when INBOXPAY_E2E_KEEP=1).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.dnsserver import DnsServer
from e2e.procs import free_port
from e2e.world import AUTHSERV_ID, DkimKey, new_dkim_keys, zones

from .deploy import Deployment, install, require


@pytest.fixture(scope="module")
def ops_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("tests/ops need root: they create files owned by another user", pytrace=False)
    # Not tmp_path: its parents are 0700, and the service user must reach the root.
    root = Path(tempfile.mkdtemp(prefix="inboxpay-ops-"))
    root.chmod(0o755)
    yield root
    if os.environ.get("INBOXPAY_E2E_KEEP") == "1":
        print(f"\nops files kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ops_dkim_keys() -> dict[str, DkimKey]:
    return new_dkim_keys()


@pytest.fixture(scope="module")
def ops_dns(ops_dir: Path, ops_dkim_keys: dict[str, DkimKey]) -> Iterator[DnsServer]:
    require("dnsmasq", "apt-get install dnsmasq-base")
    server = DnsServer(ops_dir, free_port(), zones(ops_dkim_keys))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def deployment(ops_dir: Path, ops_dns: DnsServer) -> Deployment:
    ports = {name: free_port() for name in ("milter", "sidecar", "sandbox", "metrics")}
    return install(ops_dir / "root", ops_dns.port, ports, AUTHSERV_ID)
