"""The parts of [milter] workers that need no libmilter: adding up the workers' metrics."""

from __future__ import annotations

import socket
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inboxpay.milter.workers import Channel, Supervisor, answer_scrapes, merge


def worker_registry(messages: int, rss: float, started: float) -> CollectorRegistry:
    r = CollectorRegistry()
    Counter("inboxpay_milter_messages", "m", registry=r).inc(messages)
    Counter("inboxpay_milter_removed", "r", ["reason"], registry=r).labels("x").inc(messages)
    h = Histogram("inboxpay_milter_callback_seconds", "c", buckets=(0.1, 1.0), registry=r)
    for _ in range(messages):
        h.observe(0.05)
    Gauge("process_resident_memory_bytes", "rss", registry=r).set(rss)
    Gauge("process_start_time_seconds", "start", registry=r).set(started)
    Gauge("process_max_fds", "fds", registry=r).set(1024)
    return r


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_the_workers_metrics_add_up_over_their_channels() -> None:
    channels = []
    for messages, rss, started in ((3, 100.0, 50.0), (4, 200.0, 40.0)):
        ours, theirs = socket.socketpair()
        answer_scrapes(theirs, worker_registry(messages, rss, started))
        channels.append(Channel(ours))
    texts = [c.scrape() for c in channels]
    assert all(t is not None for t in texts)
    families = [f for t in texts if t is not None for f in text_string_to_metric_families(t)]
    registry = CollectorRegistry()

    class Merged:
        def collect(self):  # type: ignore[no-untyped-def]
            return merge(families)

    registry.register(Merged())  # type: ignore[arg-type]
    got = samples(generate_latest(registry).decode())
    assert got[("inboxpay_milter_messages_total", ())] == 7
    assert got[("inboxpay_milter_removed_total", (("reason", "x"),))] == 7
    assert got[("inboxpay_milter_callback_seconds_count", ())] == 7
    assert got[("inboxpay_milter_callback_seconds_bucket", (("le", "0.1"),))] == 7
    assert got[("process_resident_memory_bytes", ())] == 300  # all workers together
    assert got[("process_start_time_seconds", ())] == 40  # the earliest
    assert got[("process_max_fds", ())] == 1024  # a limit, not a sum
    for c in channels:
        c.close()


def test_a_worker_that_is_gone_answers_nothing() -> None:
    ours, theirs = socket.socketpair()
    theirs.close()
    assert Channel(ours).scrape() is None


def test_a_unix_socket_name_removed_by_a_stopping_worker_is_put_back(tmp_path: Path) -> None:
    path = tmp_path / "milter.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        supervisor = Supervisor.__new__(Supervisor)
        supervisor._socket_path = path
        supervisor._keep_socket_name()
        inode = path.stat().st_ino
        path.unlink()  # what libmilter's mi_closener does in a worker stopped by SIGTERM
        supervisor._restore_socket_name()
        assert path.stat().st_ino == inode
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))  # the workers' listening socket answers again
        supervisor._remove_socket_name()
        assert list(tmp_path.iterdir()) == []
