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

from inboxpay.errors import InboxPayError


class DeadlineExceeded(InboxPayError):
    """The message used up its CPU time; the caller takes the fail-safe path."""


# (CPU time, wall time) at which the deadline passes. A thread cannot use more CPU than
# the wall time that went by, so until the wall-clock mark no CPU clock is read:
# time.thread_time() is a system call (CLOCK_THREAD_CPUTIME_ID has no vDSO fast path),
# perf_counter() is not, and check() runs in every loop of the message path.
_until: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "inboxpay_cpu_deadline", default=None
)


@contextmanager
def cpu_deadline(seconds: float) -> Iterator[None]:
    """Within this block, :func:`check` raises once the thread has used ``seconds`` of CPU."""
    token = _until.set((time.thread_time() + seconds, time.perf_counter() + seconds))
    try:
        yield
    finally:
        _until.reset(token)


def check() -> None:
    """Raise DeadlineExceeded when the current deadline has passed; free outside one."""
    until = _until.get()
    if until is None or time.perf_counter() < until[1]:
        return  # less wall time than the budget went by: less CPU time too
    if time.thread_time() > until[0]:
        raise DeadlineExceeded("the message used up its CPU deadline")
