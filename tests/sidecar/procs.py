"""The sidecar as a real separate process, as the CLI runs it (the sandbox processor's
is tests/support/sandbox.py).

Each process writes its stdout and stderr (the JSON logs) to a file of its own, which the
leak scan reads afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.procs import Process


class Sidecar(Process):
    """``inboxpay sidecar --config FILE``, on the port of the config's ``[sidecar] listen``."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        listen = tomllib.loads(config_path.read_text())["sidecar"]["listen"]
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
