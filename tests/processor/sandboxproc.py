"""The sandbox processor as a real separate process on a free loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.support.procs import free_port as free_port

# The process the CLI would run, minus the config file: settings come as JSON in argv,
# the API key in the environment (not on a command line that ps shows).
_SCRIPT = """
import json, os, sys
from pathlib import Path
from inboxpay import logs
from inboxpay.processor.sandbox.server import run
from inboxpay.processor.sandbox.settings import SandboxSettings
a = json.loads(sys.argv[1])
logs.setup("debug")
run(SandboxSettings(
    listen=a["listen"],
    private_key_file=Path(a["key_file"]),
    api_key=os.environ["SANDBOX_API_KEY"],
    ledger_path=Path(a["ledger"]),
    public_base_url=a["base_url"],
    delay=a["delay"],
))
"""


class SandboxProcess:
    def __init__(
        self, workdir: Path, key_file: Path, api_key: str, *, ledger: Path, delay: float = 0.0
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"sandbox-{self.port}.log"
        self._args = {
            "listen": f"127.0.0.1:{self.port}",
            "key_file": str(key_file),
            "ledger": str(ledger),
            "base_url": self.base_url,
            "delay": delay,
        }
        self._api_key = api_key
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        env = {**os.environ, "SANDBOX_API_KEY": self._api_key}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _SCRIPT, json.dumps(self._args)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self._proc.poll() is not None:
                raise RuntimeError(f"sandbox exited {self._proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox not ready after {timeout} s:\n{self.log_text()}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
