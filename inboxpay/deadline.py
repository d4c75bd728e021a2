"""A per-message CPU deadline that long-running loops check cooperatively.

A Python thread cannot be interrupted from outside, so the message path's loops that
hostile input can stretch (the HTML tokenizer, JSON-LD reference resolution, the MIME
walk, DKIM signatures) call :func:`check`. It measures the calling thread's CPU time,
not wall time: waiting for DNS has its own budget, and waiting for the GIL under load
must not make a genuine invoice lose its card.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager


class DeadlineExceeded(Exception):
    """The message used up its CPU time; the caller takes the fail-safe path."""


_until: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "inboxpay_cpu_deadline", default=None
)


@contextmanager
def cpu_deadline(seconds: float) -> Iterator[None]:
    """Within this block, :func:`check` raises once the thread has used ``seconds`` of CPU."""
    token = _until.set(time.thread_time() + seconds)
    try:
        yield
    finally:
        _until.reset(token)


def check() -> None:
    """Raise DeadlineExceeded when the current deadline has passed; free outside one."""
    until = _until.get()
    if until is not None and time.thread_time() > until:
        raise DeadlineExceeded("the message used up its CPU deadline")
