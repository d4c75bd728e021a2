"""The sandbox processor and the sidecar as real separate processes, as the CLI runs them.

Each process writes its stdout and stderr (the JSON logs) to a file of its own, which the
leak scan reads afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

# The CLI cannot set the sandbox's answer delay: this is `inboxpay processor-sandbox`
# with settings_from_config(..., delay=...).
_DELAYED_SANDBOX = """
import sys
from inboxpay import config, logs
from inboxpay.processor.sandbox.server import run
from inboxpay.processor.sandbox.settings import settings_from_config
cfg = config.load(sys.argv[1])
logs.setup("debug")
run(settings_from_config(cfg.sandbox, delay=float(sys.argv[2])))
"""


# A sandbox whose charge requests it processes late: each POST /v1/charges, once received,
# waits until the gate file exists before the sandbox looks at it. The sidecar times out
# meanwhile, as behind a slow path; the request is still processed once released.
_GATED_SANDBOX = """
import asyncio, sys
from pathlib import Path
from aiohttp import web
from inboxpay import config, logs
from inboxpay.processor.sandbox.server import create_app
from inboxpay.processor.sandbox.settings import parse_listen, settings_from_config
cfg = config.load(sys.argv[1])
gate = Path(sys.argv[2])
logs.setup("debug")
settings = settings_from_config(cfg.sandbox)
app = create_app(settings)

@web.middleware
async def late(request, handler):
    if request.method == "POST" and request.path == "/v1/charges":
        await request.read()  # received in full: the sidecar may hang up meanwhile
        while not gate.exists():
            await asyncio.sleep(0.05)
    return await handler(request)

app.middlewares.insert(0, late)
host, port = parse_listen(settings.listen)
web.run_app(app, host=host, port=port, print=None)
"""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Process:
    """A child process with its output in ``log_path``, ready once ``{url}/healthz`` is 200."""

    def __init__(self, argv: list[str], url: str, log_path: Path) -> None:
        self.argv = argv
        self.url = url
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        assert self._proc is None, "already running"
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not _healthy(self.url):
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise RuntimeError(f"{self.argv} exited {code}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.argv} not ready after {timeout} s:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read(config_path: Path) -> dict[str, Any]:
    return tomllib.loads(config_path.read_text())


class Sandbox(Process):
    """The sandbox processor of a config's ``[sandbox]`` table."""

    def __init__(
        self, config_path: Path, log_path: Path, delay: float = 0.0, gate: Path | None = None
    ) -> None:
        data = _read(config_path)
        section = data["sandbox"]
        base = config_path.parent
        self.config_path = config_path
        self.api_key_file: Path = base / section["api_key_file"]
        # The public half, as the config's own [processors.sandbox] names it (init writes both).
        self.public_key_file: Path = base / data["processors"]["sandbox"]["public_key_file"]
        self.ledger_file: Path = base / section["ledger"]
        if gate is not None:
            argv = [sys.executable, "-c", _GATED_SANDBOX, str(config_path), str(gate)]
        elif delay:
            argv = [sys.executable, "-c", _DELAYED_SANDBOX, str(config_path), str(delay)]
        else:
            argv = [sys.executable, "-m", "inboxpay", "processor-sandbox"]
            argv += ["--config", str(config_path), "--log-level", "debug"]
        super().__init__(argv, f"http://{section['listen']}", log_path)

    def charge_requests_done(self) -> int:
        """How many charge requests the sandbox has answered (new or replayed), by its log."""
        return len(re.findall(r'"msg": ?"charge (?:created|replayed)"', self.log_text()))

    @property
    def api_key(self) -> str:
        return self.api_key_file.read_text("ascii").strip()

    async def ledger(self) -> list[dict[str, Any]]:
        """The charges that moved money, from the processor itself."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/v1/ledger", headers=headers) as r,
        ):
            assert r.status == 200, await r.text()
            charges: list[dict[str, Any]] = (await r.json())["charges"]
            return charges

    def processor_table(self, timeout: float = 10.0) -> dict[str, Any]:
        """A ``[processors.sandbox]`` table pointing at this sandbox."""
        return {
            "url": self.url,
            "public_key_file": str(self.public_key_file),
            "api_key_file": str(self.api_key_file),
            "timeout": timeout,
        }


class Sidecar(Process):
    """``inboxpay sidecar --config FILE``, on the port of the config's ``[sidecar] listen``."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        listen = _read(config_path)["sidecar"]["listen"]
        argv = [sys.executable, "-m", "inboxpay", "sidecar", "--config", str(config_path)]
        super().__init__([*argv, "--log-level", "debug"], f"http://{listen}", log_path)


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inboxpay", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
