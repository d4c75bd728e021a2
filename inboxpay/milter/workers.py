"""Several milter processes on one libmilter socket ([milter] workers).

One Python process runs ``eom`` on one core at a time (the GIL), so the parent opens
libmilter's socket once (``smfi_opensocket``) and forks N workers, each of which runs
``smfi_main`` on the inherited listening socket: the kernel hands each MTA connection
to one worker, which keeps it to the end (a milter session never moves between
processes). The listening socket is made non-blocking, so the workers that lose the race
for a connection go back to select() (libmilter treats EAGAIN so) instead of sitting
in accept().

The parent handles no mail. It restarts a worker that dies (a connection in flight on
that worker is broken; Postfix applies ``milter_default_action`` to that one message and
the others go on through the remaining workers), serves one metrics endpoint that adds
up the workers' (each answers over a socketpair), and on SIGTERM or SIGINT stops the
workers and leaves. Each worker reloads the config and key files on its own, as one
process does (milter/reload.py), and a restarted one reloads before its first message.

libmilter removes a unix socket's name when a worker's libmilter stops on SIGTERM, which
would leave the others listening on a socket no MTA can reach: the parent keeps a second
hard link to the socket and puts the name back when a worker exits.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import milter
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from inboxpay import logs
from inboxpay.config import Config
from inboxpay.milter.listener import open_socket, set_nonblocking_listener
from inboxpay.milter.metrics_http import serve
from inboxpay.milter.reload import Stamps

_log = logging.getLogger(__name__)

NAME = "inboxpay"
# A worker that dies sooner than this after its start is restarted after a pause, so a
# worker that cannot start does not spin the CPU.
_QUICK_DEATH = 2.0
# How long stopping workers get (libmilter looks for a stop request every 5 s) before
# they are killed.
_STOP_GRACE = 15.0
_SCRAPE_TIMEOUT = 5.0
_READY_TIMEOUT = 60.0  # a worker reads its key files and the store before it is ready
_READY = b"R"
_KEEP_SUFFIX = ".inboxpay-keep"


class Channel:
    """The parent's end of one worker's metrics socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()  # one scrape at a time on this pair
        sock.settimeout(_SCRAPE_TIMEOUT)

    def scrape(self) -> str | None:
        """The worker's metrics in the text format, or None when it does not answer."""
        with self._lock:
            try:
                self._sock.sendall(b"?")
                size = int.from_bytes(self._read(4), "big")
                return self._read(size).decode("utf-8")
            except (OSError, EOFError, UnicodeDecodeError):
                return None

    def _read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise EOFError("worker closed its metrics channel")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self._sock.close()


def answer_scrapes(sock: socket.socket, registry: CollectorRegistry) -> None:
    """In a worker: send ``registry`` each time the parent asks (a daemon thread)."""

    def loop() -> None:
        while sock.recv(1):
            data = generate_latest(registry)
            sock.sendall(len(data).to_bytes(4, "big") + data)

    threading.Thread(target=loop, name="inboxpay-metrics-channel", daemon=True).start()


def _combine(name: str, old: float, new: float) -> float:
    # Times since the epoch: the earliest; a limit: the largest; everything else adds up
    # (counters, histograms, memory and CPU of all the workers).
    if name.endswith(("_created", "_start_time_seconds")):
        return min(old, new)
    if name.endswith("_max_fds"):
        return max(old, new)
    return old + new


def merge(families: Iterable[Metric]) -> list[Metric]:
    """One family per name, each sample combined over every source (see _combine)."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in families:
        if family.name not in merged:
            merged[family.name] = Metric(family.name, family.documentation, family.type)
            values[family.name] = {}
        seen = values[family.name]
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            seen[key] = (
                _combine(sample.name, seen[key], sample.value) if key in seen else sample.value
            )
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


class WorkersCollector(Collector):
    """The workers' metrics, added up at scrape time, and the parent's own process."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._own = ProcessCollector(registry=None)

    def collect(self) -> Iterator[Metric]:
        families: list[Metric] = list(self._own.collect())
        for channel in self._supervisor.channels():
            text = channel.scrape()
            if text is not None:
                families.extend(text_string_to_metric_families(text))
        yield from merge(families)


@dataclass
class _Worker:
    slot: int
    pid: int
    channel: Channel
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(self, config: Config, seen: Stamps, count: int) -> None:
        self._config = config
        self._seen = seen
        self._count = count
        self._workers: dict[int, _Worker] = {}
        self._lock = threading.Lock()  # the metrics thread reads the workers
        self._stopping = False
        self._socket_path = _unix_path(config.milter.socket)

    def channels(self) -> list[Channel]:
        with self._lock:
            return [w.channel for w in self._workers.values()]

    def run(self) -> None:
        config = self._config
        registry = None
        if config.milter.metrics_listen is not None:
            # Before anything else starts: a taken port stops start-up with one line.
            registry = CollectorRegistry()
            registry.register(WorkersCollector(self))
            serve(registry, *config.milter.metrics_listen)
        open_socket(NAME, config.milter.socket, config.milter.timeout)
        set_nonblocking_listener()
        self._keep_socket_name()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in range(self._count):
            self._start(slot)
        _log.info(
            "milter listening", extra={"socket": config.milter.socket, "workers": self._count}
        )
        try:
            self._watch()
        finally:
            self._remove_socket_name()

    def _stop(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            _log.info("stopping the workers", extra={"signal": signal.Signals(signum).name})
        self._stopping = True

    def _watch(self) -> None:
        stop_deadline: float | None = None
        while self._workers:
            if self._stopping and stop_deadline is None:
                stop_deadline = time.monotonic() + _STOP_GRACE
                self._signal_all(signal.SIGTERM)
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                self._signal_all(signal.SIGKILL)
                stop_deadline = float("inf")
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.1)
                continue
            worker = self._workers.get(pid)
            if worker is None:
                continue  # not one of ours (nothing else is forked here)
            with self._lock:
                del self._workers[pid]
            worker.channel.close()
            self._restore_socket_name()
            if self._stopping:
                continue
            _log.error(
                "milter worker exited; starting another",
                extra={"pid": pid, "status": _status(status), "slot": worker.slot},
            )
            if time.monotonic() - worker.started < _QUICK_DEATH:
                time.sleep(1.0)
            self._start(worker.slot)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _start(self, slot: int) -> None:
        ours, theirs = socket.socketpair()
        level = logging.getLevelName(logging.getLogger().level).lower()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's loop
            ours.close()
            code = 1
            try:
                _worker(self._config, self._seen, theirs, level)
                code = 0
            except BaseException:  # noqa: BLE001 - a worker ends here, whatever happened
                _log.exception("milter worker failed")
            finally:
                atexit._run_exitfuncs()  # the log writer's queue
                os._exit(code)
        theirs.close()
        # Ready: its runtime is built and its threads started (or it failed: b"").
        ours.settimeout(_READY_TIMEOUT)
        try:
            ready = ours.recv(1) == _READY
        except OSError:
            ready = False
        with self._lock:
            self._workers[pid] = _Worker(slot, pid, Channel(ours))
        if ready:
            _log.info("milter worker started", extra={"pid": pid, "slot": slot})
        else:
            _log.error("milter worker did not start", extra={"pid": pid, "slot": slot})

    def _keep_socket_name(self) -> None:
        if self._socket_path is None:
            return
        keep = self._socket_path.with_name(self._socket_path.name + _KEEP_SUFFIX)
        keep.unlink(missing_ok=True)
        os.link(self._socket_path, keep)

    def _restore_socket_name(self) -> None:
        path = self._socket_path
        if path is None or path.exists():
            return
        try:
            os.link(path.with_name(path.name + _KEEP_SUFFIX), path)
            _log.warning("put the milter socket's name back", extra={"socket": str(path)})
        except OSError as e:
            _log.error("the milter socket's name is gone and cannot be restored: %s", e)

    def _remove_socket_name(self) -> None:
        if self._socket_path is not None:
            self._socket_path.with_name(self._socket_path.name + _KEEP_SUFFIX).unlink(
                missing_ok=True
            )
            self._socket_path.unlink(missing_ok=True)


def _worker(config: Config, seen: Stamps, channel: socket.socket, level: str) -> None:
    # Threads do not survive fork: the log writer, then the worker's own, start here.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    logs.setup(level)
    # The message path is imported here, in the worker, never by the supervisor.
    from inboxpay.milter.metrics import MilterMetrics
    from inboxpay.milter.server import start_worker

    metrics = MilterMetrics()
    start_worker(config, seen, metrics)
    channel.sendall(_READY)
    answer_scrapes(channel, metrics.registry)
    milter.main()


def _unix_path(spec: str) -> Path | None:
    for prefix in ("unix:", "local:"):
        if spec.startswith(prefix):
            return Path(spec[len(prefix) :])
    return Path(spec) if spec.startswith("/") else None


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit {os.waitstatus_to_exitcode(status)}"


def supervise(config: Config, seen: Stamps, count: int) -> None:
    """Run ``count`` workers on one socket until SIGTERM or SIGINT."""
    Supervisor(config, seen, count).run()
