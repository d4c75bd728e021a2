"""The e2e session's services as plain context managers, so that any suite can run them
(tests/e2e/conftest.py wraps them in fixtures; tests/chain/ reuses them):

- ``work_dir``: one temporary directory that Postfix's users can reach, kept when
  INBOXPAY_E2E_KEEP=1 for reading the logs;
- ``running_dns``: dnsmasq serving the test zones, checked before use;
- ``running_milter`` / ``running_postfix``: start a milter process or a private Postfix,
  stop it afterwards;
- ``milter_checked``: fail when, meanwhile, Postfix skipped the milter or the milter died.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .dnsserver import DnsServer
from .milterproc import CardKeys, MilterProcess
from .postfix import PrivatePostfix, milter_warnings
from .procs import free_port, require_program
from .world import DkimKey, zones

KEEP_ENV = "INBOXPAY_E2E_KEEP"


@contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    # Fail (never skip) before starting anything when the real software is missing.
    require_program("postfix", "apt-get install postfix")
    require_program("dnsmasq", "apt-get install dnsmasq-base")
    # Not pytest's tmp_path: its parents are mode 0700, and Postfix daemons and
    # the virtual agent run as other users that must reach the queue and Maildirs.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    yield root
    if os.environ.get(KEEP_ENV) == "1":
        print(f"\nfiles kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_dns(workdir: Path, dkim_keys: dict[str, DkimKey]) -> Iterator[DnsServer]:
    server = DnsServer(workdir, free_port(), zones(dkim_keys))
    try:
        server.start()
        # A DKIM key is longer than one character-string: proves the split works.
        server.check_txt(dkim_keys["post.xero.test"].record_name)
        server.check_txt("post.xero.test")
        yield server
    finally:
        server.stop()


@contextmanager
def running_milter(process: MilterProcess) -> Iterator[CardKeys]:
    try:
        yield process.start()
    finally:
        process.stop()


@contextmanager
def running_postfix(instance: PrivatePostfix) -> Iterator[PrivatePostfix]:
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@contextmanager
def milter_checked(postfix: PrivatePostfix, milter: MilterProcess) -> Iterator[None]:
    """Fail the test when Postfix skipped the milter while it ran.

    With milter_default_action = accept an unreachable or failing milter only
    leaves a warning in the log, and the mail is delivered untouched.
    """
    start = postfix.log_size()
    yield
    warnings = milter_warnings(postfix.log_since(start))
    if warnings:
        pytest.fail("Postfix skipped the milter:\n" + "\n".join(warnings), pytrace=False)
    milter.check_alive()
