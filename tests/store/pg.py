"""A throwaway PostgreSQL cluster for tests, and fresh databases inside it.

Plain functions and context managers, no pytest, so that any test folder can use them:
``throwaway_cluster()`` yields the DSN of an empty database on a private server that lives
in a temporary directory and is removed afterwards. When INBOXPAY_TEST_PG_DSN is set, that
server is used instead (its user needs CREATEDB for ``fresh_database``).

``initdb`` refuses to run as root, so as root the server programs run as the ``postgres``
user, in a directory that user owns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support.procs import free_port as free_port

ENV_DSN = "INBOXPAY_TEST_PG_DSN"
SERVER_USER = "postgres"

# Durability is pointless for a throwaway cluster; skipping fsync makes each
# CREATE DATABASE and commit cheap.
_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class ClusterError(RuntimeError):
    """PostgreSQL could not be found, initialized or started."""


def find_bindir() -> Path:
    """The folder of initdb and pg_ctl: ``pg_config --bindir``, else the newest
    /usr/lib/postgresql/*/bin (Debian puts the server programs there, off the PATH)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        answer = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if answer.returncode == 0 and answer.stdout.strip():
            candidates.append(Path(answer.stdout.strip()))

    def major(path: Path) -> int:
        found = re.search(r"\d+", path.parent.name)
        return int(found.group(0)) if found else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise ClusterError(
        "PostgreSQL server programs (initdb, pg_ctl) not found: apt-get install postgresql"
    )


class _Runner:
    """Runs server programs as the postgres user when we are root, as ourselves otherwise."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.as_server_user = os.geteuid() == 0

    def own(self, path: Path) -> None:
        if self.as_server_user:
            shutil.chown(path, SERVER_USER, SERVER_USER)

    def run(self, *argv: str | Path, what: str, timeout: float = 60.0) -> str:
        switch = self.as_server_user
        try:
            done = subprocess.run(
                [str(a) for a in argv],
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "LC_ALL": "C"},
                user=SERVER_USER if switch else None,
                group=SERVER_USER if switch else None,
                extra_groups=[] if switch else None,  # drop root's supplementary groups
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ClusterError(f"{what} failed: {e}") from e
        if done.returncode != 0:
            raise ClusterError(f"{what} failed ({done.returncode}):\n{done.stderr or done.stdout}")
        return done.stdout


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text("utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no server log>"


@contextmanager
def throwaway_cluster(dbname: str = "inboxpay_test") -> Iterator[str]:
    """Start a private server on 127.0.0.1 (trust auth, a free port, its socket in the
    temporary directory), create ``dbname``, yield its DSN; stop and remove everything
    at the end. Raises ClusterError when PostgreSQL cannot start."""
    external = os.environ.get(ENV_DSN)
    if external:
        yield external
        return
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="inboxpay-pg-"))
    runner = _Runner(root)
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    try:
        sockets.mkdir()
        for path in (root, sockets):
            runner.own(path)
        runner.run(
            bindir / "initdb",
            *("-D", data, "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--locale=C"),
            *("--no-sync", "--no-instructions"),
            what="initdb",
        )
        port = _start(runner, bindir, data, sockets, log)
        try:
            runner.run(
                bindir / "createdb",
                *("-h", "127.0.0.1", "-p", str(port), "-U", SERVER_USER, dbname),
                what="createdb",
            )
            yield f"postgresql://{SERVER_USER}@127.0.0.1:{port}/{dbname}"
        finally:
            _stop(runner, bindir, data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(runner: _Runner, bindir: Path, data: Path, sockets: Path, log: Path) -> int:
    """Start the server on a free port; retry when another process took the port first."""
    errors: list[str] = []
    for _ in range(3):
        port = free_port()
        settings = {
            **_SETTINGS,
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{sockets}'",
        }
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        try:
            runner.run(
                bindir / "pg_ctl",
                *("-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"),
                what="pg_ctl start",
                timeout=90,
            )
            return port
        except ClusterError as e:
            errors.append(f"{e}\n{_log_tail(log)}")
    raise ClusterError("PostgreSQL did not start:\n" + "\n---\n".join(errors))


def _stop(runner: _Runner, bindir: Path, data: Path) -> None:
    try:
        runner.run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop", what="pg_ctl stop")
    except ClusterError:
        runner.run(
            bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", what="pg_ctl stop"
        )


def with_database(dsn: str, name: str) -> str:
    """The same DSN (user, host, options) naming another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database(dsn: str) -> AsyncIterator[str]:
    """Create an empty database next to the one ``dsn`` names; yield its DSN; drop it."""
    name = f"inboxpay_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(dsn, name)
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            # FORCE: a test that failed may have left a pool open.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
