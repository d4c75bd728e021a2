"""Structured logs: one JSON object per line, or key=value on a terminal.

Fields come from ``extra=`` and from the log context: the milter binds the MTA's
``queue_id`` for the length of a message, the sidecar a ``request_id`` for the
length of a request, so every line logged meanwhile, by any module, carries it.
The context is a :class:`contextvars.ContextVar`: pymilter keeps one Python
thread state per SMTP connection and aiohttp runs each request in its own task,
so neither leaks into another connection or request.

Never log a card number, security code, token or key: no field here is filtered.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

# LogRecord attributes that are not context we attached with ``extra=`` or the log context.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "inboxpay_log_context", default=None
)


def bind(**fields: str) -> None:
    """Attach ``fields`` to every line logged from now on in this context (a milter
    connection's thread state, an asyncio task) until :func:`unbind`."""
    _fields.set(fields)


def unbind() -> None:
    _fields.set(None)


@contextlib.contextmanager
def context(**fields: str) -> Iterator[None]:
    """Attach ``fields`` to every line logged inside the block (added to any outer ones)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


class ContextFilter(logging.Filter):
    """Copies the log context onto each record; ``extra=`` of the same name wins.

    On the handler, not a logger: a logger's filters skip records of its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _fields.get()
        if fields:
            attrs = record.__dict__
            for key, value in fields.items():
                attrs.setdefault(key, value)
        return True


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


# One encoder for every line: json.dumps(default=...) would build a new one each time.
_ENCODER = json.JSONEncoder(default=str)
_LEVELS = {n: logging.getLevelName(n).lower() for n in (10, 20, 30, 40, 50)}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # Lines come many per second: format the timestamp once per second.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return cached[1]

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created),
            "level": _LEVELS.get(record.levelno) or record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={_ENCODER.encode(v)}" for k, v in _context(record).items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()} {pairs}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# After writing what was queued, the writer pauses this long before it waits again.
_PAUSE = 0.02


class _LineHandler(logging.Handler):
    """Formats each record where it is logged (the log context lives there) and queues
    the line alone: no copy of the record, as QueueHandler makes, for a writer that only
    needs the text."""

    def __init__(self, lines: queue.SimpleQueue[str | None]) -> None:
        super().__init__()
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put(self.format(record))
        except Exception:  # noqa: BLE001 - logging.Handler's own convention for emit
            self.handleError(record)


class _Writer:
    """Writes queued lines to a stream in batches, from one thread: under load one
    wake-up per batch, not one per line.

    A writer blocked on the queue is woken (a futex system call, often a context switch)
    by every line put; pausing after each batch lets a burst's lines queue up without
    waking anyone. Idle, it blocks, so it costs nothing; a line waits at most ``_PAUSE``
    longer to be written. Writing under a handler's lock in the logging thread made
    milter threads queue behind a write that had dropped the GIL.
    """

    def __init__(self, lines: queue.SimpleQueue[str | None], stream: TextIO) -> None:
        self._lines = lines
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="inboxpay-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            line = self._lines.get()
            batch = []
            while line is not None:
                batch.append(line)
                try:
                    line = self._lines.get_nowait()
                except queue.Empty:
                    break
            self._write(batch)
            if line is None:
                return
            time.sleep(_PAUSE)

    def _write(self, batch: list[str]) -> None:
        if not batch:
            return
        try:
            self._stream.write("\n".join(batch) + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nothing left to tell
            pass

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._lines.put(None)
        self._thread.join()


_writer: _Writer | None = None


def setup(level: str = "info") -> None:
    """Log to stderr through one writer thread.

    Records carry no caller, thread or process information (the formatters print none
    of it): gathering it (a stack walk for the caller) cost more than the rest of a
    message's log line (the logging HOWTO's "Optimization" section).
    """
    global _writer
    if _writer is not None:
        _writer.stop()
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    handler = _LineHandler(lines)
    handler.setFormatter(KeyValueFormatter() if sys.stderr.isatty() else JsonFormatter())
    handler.addFilter(ContextFilter())
    _writer = _Writer(lines, sys.stderr)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Database drivers log statements with their bound values (emails, addresses,
    # sealed blobs) at debug level: keep them quiet whatever our own level is.
    for name in ("aiosqlite", "asyncpg"):
        logging.getLogger(name).setLevel(logging.WARNING)


@atexit.register
def _flush() -> None:
    """Write what is still queued before the process ends."""
    if _writer is not None:
        _writer.stop()
