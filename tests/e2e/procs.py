"""Process plumbing shared by the harness: free ports, readiness waits, clean stops."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.procs import free_port as free_port

T = TypeVar("T")


def require_program(name: str, hint: str) -> str:
    """The absolute path of a program the harness cannot run without.

    Fails (never skips): a missing MTA must not turn the e2e suite green.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"{name} not found: {hint}", pytrace=False)
    return path


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log file, for failure messages."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e.strerror}>"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll ``ready`` until it holds; ``alive`` returns a reason when waiting is pointless."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        dead = alive()
        if dead is not None:
            raise RuntimeError(f"{what}: {dead}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.05)


def repeat_until(make: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """``make()`` again until ``done`` holds for what it made, or ``timeout`` passes; the
    last one made either way (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        made = make()
        if done(made) or time.monotonic() > deadline:
            return made


def accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def process_exited(proc: subprocess.Popen[bytes], log: Path) -> Callable[[], str | None]:
    """An ``alive`` check for :func:`wait_until` that reports an early exit with the log."""

    def check() -> str | None:
        if proc.poll() is None:
            return None
        return f"exited with status {proc.returncode}; log {log}:\n{tail(log)}"

    return check


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Terminate one process we started, killing it if it ignores SIGTERM."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
