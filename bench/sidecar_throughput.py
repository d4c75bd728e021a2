#!/usr/bin/env python3
"""Sidecar throughput: card verification and payments against PostgreSQL, 32 clients.

Beside them, on the same machine and in the same run: a bare aiohttp hello-world (the
HTTP floor of the same client and server stack) and ``pgbench`` single-row inserts on the
same PostgreSQL cluster (the database's floor for small writes).

Everything is started here, as separate processes: a throwaway PostgreSQL cluster
(tests/store/pg.py), ``inboxpay processor-sandbox`` and ``inboxpay sidecar`` with a config
written by ``inboxpay init``, the hello-world server, and the load generator's client
processes. Every response is checked; after the payments, the sandbox's ledger must hold
exactly one charge per succeeded payment, or the benchmark fails.

Not a test and not run by CI. Figures and method: docs/benchmarks.md, "Sidecar".

    .venv/bin/python bench/sidecar_throughput.py                 # print the table
    .venv/bin/python bench/sidecar_throughput.py --write-docs    # and rewrite the docs block
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
# tests/ and bench/ are imported as packages of the repo (tests/ is a namespace package).
sys.path.insert(0, str(REPO))

from bench.cpu import tree_seconds  # noqa: E402
from inboxpay import config as config_module  # noqa: E402
from inboxpay.card.header import CardSigner  # noqa: E402
from inboxpay.card.keys import kid_of, load_recipient_key, load_signing_key  # noqa: E402
from inboxpay.config import Config  # noqa: E402
from inboxpay.dev.init import init  # noqa: E402
from inboxpay.sidecar.auth import load_issuer_key, mint  # noqa: E402
from tests.sidecar.toml import dumps as toml_dumps  # noqa: E402
from tests.store.pg import find_bindir, free_port, fresh_database, throwaway_cluster  # noqa: E402
from tests.support.cards import card_claims  # noqa: E402
from tests.support.procs import Process  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- sidecar-bench:begin -->"
END = "<!-- sidecar-bench:end -->"
PYSPY = Path("/tmp/pyspy-venv/bin/py-spy")

#: The other benchmark of this repo; both load the same 2 CPUs, so never run at once.
OTHER_BENCH = "milter_throughput"
#: The sandbox's test card that always succeeds, and a code it accepts (000 is "wrong").
VISA_OK = "4242424242424242"
GOOD_CODE = "731"
#: [limits] may go up to 100000: far above what a run makes per user, so no request of
#: the benchmark is shaped by a rate limit.
GENEROUS = 100000
#: Cards signed ahead for the payments, as a multiple of what the last rate would use.
CARD_MARGIN = 1.4
#: Seconds after which idle PostgreSQL 15 backends have flushed their statistics (10 s).
STATS_FLUSH = 11.0

HELLO = "aiohttp hello-world (GET)"
VERIFY = "POST /v1/cards/verify"
PAY = "POST /v1/payments"

#: From inboxpay/sidecar/paying.py and inboxpay/store/sql.py: the idempotency key claimed
#: (INSERT) and finished (UPDATE), the attempt recorded (INSERT), the payment created
#: (INSERT) and updated (UPDATE), the CVC failures cleared (DELETE), two audit rows
#: (INSERT). Each commits on its own. The reads beside them: the invoice's active payment,
#: the payment method, two attempt counts and the payment re-read after its update.
WRITES_PER_PAYMENT = 8
#: 10 statements on their own + 2 transactions (BEGIN, 1 or 2 statements, COMMIT: 7)
#: + asyncpg's reset query at each of the 12 pool releases. Checked with log_statement=all.
ROUND_TRIPS_PER_PAYMENT = 29


class BenchFailure(Exception):
    """A run that does not measure what it claims to; the benchmark stops."""


# --- the hello-world server: its own process, started as this script --serve-hello ---


def serve_hello(port: int) -> None:
    """The HTTP floor: aiohttp with one handler, no middleware, no access log, the same
    run_app settings as the sidecar (inboxpay/sidecar/app.py:run)."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, world")

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/healthz", hello)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the load generator: client processes, each with its share of the 32 clients ---


@dataclass
class Plan:
    """What one client sends, again and again. Plain data: it travels to a client process."""

    kind: str  # "hello" | "verify" | "pay"
    url: str
    headers: dict[str, str]
    # GET when empty; verify cycles through its bodies; pay sends each body once (each is
    # another invoice), so that no payment meets an invoice that is already paid.
    bodies: list[bytes] = field(default_factory=list)
    key_prefix: str = ""  # pay: Idempotency-Key = prefix + sequence number, unique per run


@dataclass
class ClientResult:
    latencies: list[float]  # seconds, of the requests that completed inside the window
    as_expected: int  # every phase: warm-up, window and the requests in flight at its end
    unexpected: Counter[str]  # "STATUS code" -> count, every phase
    used: list[int]  # bodies consumed, per plan (pay)
    cpu: float  # this client process's CPU seconds inside the window


def check(kind: str, status: int, payload: bytes) -> str | None:
    """None when the answer is what the scenario expects, else a label to count."""
    if kind == "hello":
        return None if status == 200 else str(status)
    try:
        body = json.loads(payload)
    except ValueError:
        return f"{status} (not JSON)"
    expected = (200, "payable") if kind == "verify" else (201, "succeeded")
    got = body.get("status") if isinstance(body, dict) else None
    if (status, got) == expected:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else got
    return f"{status} {code}"


async def _one_client(
    session: aiohttp.ClientSession,
    plan: Plan,
    window: tuple[float, float],
    result: ClientResult,
    index: int,
) -> None:
    start, end = window
    sent = 0
    while time.monotonic() < end:
        headers = plan.headers
        body: bytes | None = None
        if plan.kind == "pay":
            if sent >= len(plan.bodies):
                result.unexpected["ran out of pre-signed cards"] += 1
                return
            body = plan.bodies[sent]
            headers = {**headers, "Idempotency-Key": f"{plan.key_prefix}{sent}"}
        elif plan.bodies:
            body = plan.bodies[sent % len(plan.bodies)]
        sent += 1
        t0 = time.monotonic()
        try:
            async with session.request(
                "GET" if body is None else "POST", plan.url, data=body, headers=headers
            ) as r:
                payload = await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as e:
            # A payment whose answer was lost may still have been charged: stop this client
            # and let the ledger check and the unexpected count fail the run.
            result.unexpected[f"exception {type(e).__name__}"] += 1
            return
        t1 = time.monotonic()
        problem = check(plan.kind, status, payload)
        if problem is None:
            result.as_expected += 1
        else:
            result.unexpected[problem] += 1
        if start <= t1 <= end:
            result.latencies.append(t1 - t0)
        if plan.kind == "pay":
            result.used[index] = sent


async def _drive(
    plans: list[Plan], start_at: float, warmup: float, duration: float
) -> ClientResult:
    result = ClientResult([], 0, Counter(), [0] * len(plans), 0.0)
    window = (start_at + warmup, start_at + warmup + duration)
    # One connection per client, kept alive: a webmail backend keeps its connections too.
    connector = aiohttp.TCPConnector(limit=len(plans), limit_per_host=len(plans))
    timeout = aiohttp.ClientTimeout(total=30)

    async def cpu_in_window() -> None:
        await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
        before = time.process_time()
        await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
        result.cpu = time.process_time() - before

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        await asyncio.gather(
            cpu_in_window(),
            *(_one_client(session, plan, window, result, i) for i, plan in enumerate(plans)),
        )
    return result


def _client_process(conn: Connection, plans: list[Plan]) -> None:
    """A client process: say ready, get the common start time, run, send the result."""
    conn.send("ready")
    start_at, warmup, duration = conn.recv()
    conn.send(asyncio.run(_drive(plans, start_at, warmup, duration)))
    conn.close()


# --- CPU accounting from /proc ---


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over the next ``seconds`` (other people's load, before a run)."""
    b0, t0 = machine_ticks()
    time.sleep(seconds)
    b1, t1 = machine_ticks()
    return (b1 - b0) / max(1, t1 - t0)


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]  # name -> CPU seconds so far (process, its children, reaped ones)
    waited: dict[str, float]  # name -> seconds spent runnable, waiting for a CPU
    machine: tuple[int, int]


def run_queue_seconds(pid: int) -> float:
    """Time the process's main thread spent ready to run while no CPU was free: whether a
    process under 100% was short of work or short of a CPU."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return math.nan


def snapshot(watch: dict[str, int]) -> Snapshot:
    return Snapshot(
        time.monotonic(),
        {n: tree_seconds(p) for n, p in watch.items()},
        {n: run_queue_seconds(p) for n, p in watch.items() if n != "postgres"},
        machine_ticks(),
    )


# --- one repetition and its figures ---


@dataclass
class Rep:
    rate: float  # requests/s completed inside the window
    p50_ms: float
    p99_ms: float
    requests: int
    cores: dict[str, float]  # name -> CPU inside the window, in cores (1.0 = one CPU)
    waiting: dict[str, float]  # name -> share of the window spent waiting for a CPU
    busy: float  # share of all CPUs busy inside the window
    as_expected: int
    unexpected: dict[str, int]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def run_load(
    plans: list[Plan],
    procs: int,
    warmup: float,
    duration: float,
    watch: dict[str, int],
    at_window: Callable[[], None] | None = None,
) -> Rep:
    """Run the plans from ``procs`` client processes: warm-up, then the timed window."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, not a fork of this one
    parts = [list(range(i, len(plans), procs)) for i in range(procs)]
    children: list[tuple[multiprocessing.process.BaseProcess, Connection, list[int]]] = []
    try:
        for part in parts:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_client_process, args=(theirs, [plans[i] for i in part]), daemon=True
            )
            proc.start()
            theirs.close()
            children.append((proc, ours, part))
        for _, conn, _ in children:
            if not conn.poll(60) or conn.recv() != "ready":
                raise BenchFailure("a client process did not start")
        # Started and imported before the clock starts: spawning is not part of any figure.
        start_at = time.monotonic() + 0.3
        for _, conn, _ in children:
            conn.send((start_at, warmup, duration))
        sleep_until(start_at + warmup)
        before = snapshot(watch)
        if at_window is not None:
            at_window()
        sleep_until(start_at + warmup + duration)
        after = snapshot(watch)
        results: list[ClientResult] = []
        for _, conn, part in children:
            if not conn.poll(120):
                raise BenchFailure("a client process did not finish")
            result: ClientResult = conn.recv()
            results.append(result)
            for i, used in zip(part, result.used, strict=True):
                if plans[i].kind == "pay":  # those bodies are paid invoices now
                    plans[i].bodies = plans[i].bodies[used:]
    finally:
        for child, conn, _ in children:
            conn.close()
            child.join(10)
            if child.is_alive():
                child.kill()
    wall = after.at - before.at
    latencies = sorted(v for r in results for v in r.latencies)
    cores = {n: (after.cpu[n] - before.cpu[n]) / wall for n in watch}
    cores["client"] = sum(r.cpu for r in results) / wall
    waiting = {n: (after.waited[n] - before.waited[n]) / wall for n in before.waited}
    busy = (after.machine[0] - before.machine[0]) / max(1, after.machine[1] - before.machine[1])
    unexpected: Counter[str] = Counter()
    for r in results:
        unexpected.update(r.unexpected)
    return Rep(
        rate=len(latencies) / wall,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        requests=len(latencies),
        cores=cores,
        waiting=waiting,
        busy=busy,
        as_expected=sum(r.as_expected for r in results),
        unexpected=dict(unexpected),
    )


# --- waiting for the machine ---


def other_bench_running() -> bool:
    found = subprocess.run(["pgrep", "-f", OTHER_BENCH], capture_output=True, check=False)
    return found.returncode == 0


def wait_for_other_bench(limit: float) -> float:
    """Wait (up to ``limit`` s) while the milter benchmark runs; return the seconds waited."""
    started = time.monotonic()
    announced = False
    while other_bench_running():
        if time.monotonic() - started > limit:
            raise BenchFailure(f"{OTHER_BENCH} still running after {limit:.0f} s; try later")
        if not announced:
            print(f"waiting for {OTHER_BENCH} to finish (up to {limit:.0f} s) ...", flush=True)
            announced = True
        time.sleep(10)
    return time.monotonic() - started


# --- the processes under test ---


class Child(Process):
    """tests/support/procs.py's Process (start, /healthz, stop), with its pid for /proc."""

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not running"
        return self._proc.pid


def write_config(root: Path, store_url: str) -> Path:
    """``inboxpay init``, then the PostgreSQL store and limits that never bind."""
    path = init(root, sidecar_port=free_port(), sandbox_port=free_port())
    data = tomllib.loads(path.read_text())
    data["storage"]["url"] = store_url
    data["limits"] = {
        "payment_attempts_per_hour": GENEROUS,
        "cvc_failures_before_lock": GENEROUS,
        "payment_methods_per_day": GENEROUS,
    }
    path.write_text(toml_dumps(data))
    return path


def inboxpay_process(command: str, config: Path, url: str, log: Path) -> Child:
    # --log-level info: what production runs; the test suite's debug would add log lines.
    argv = [sys.executable, "-m", "inboxpay", command, "--config", str(config)]
    return Child([*argv, "--log-level", "info"], url, log)


def postmaster_pid(data_directory: str) -> int:
    # The first line of postmaster.pid; the server is pg_ctl's child, not ours.
    return int((Path(data_directory) / "postmaster.pid").read_text().split("\n", 1)[0])


# --- users, tokens and cards, as the webmail backend and the milter make them ---


@dataclass
class Users:
    config: Config
    names: list[str]
    methods: list[str] = field(default_factory=list)  # payment method id per user

    def tokens(self) -> list[str]:
        cfg = self.config
        issuer = cfg.sidecar.issuers[0]
        key = load_issuer_key(issuer)
        lifetime = cfg.sidecar.token_max_lifetime
        return [mint(issuer, key, cfg.sidecar.audience, n, lifetime) for n in self.names]


class CardMint:
    """Cards signed with the config's card-signing key, for one recipient each, every one
    for another invoice (inboxpay/milter/stamp.py builds the same claims)."""

    def __init__(self, cfg: Config) -> None:
        key = load_signing_key(cfg.signing.key_file)
        self._signer = CardSigner(key, cfg.signing.kid or kid_of(key))
        self._recipient_key = load_recipient_key(cfg.signing.recipient_key_file)
        self._partner = cfg.partners[0]
        self._issuer = cfg.milter.authserv_id
        self._run = uuid.uuid4().hex[:8]
        self._count = 0

    def card(self, recipient: str) -> str:
        self._count += 1
        p = self._partner
        claims = card_claims(
            p,
            self._issuer,
            self._recipient_key,
            [recipient],
            amount="12.34",
            number=f"BENCH-{self._run}-{self._count:07d}",
            url=f"https://{p.invoice_url_hosts[0]}/view/{self._run}{self._count}",
        )
        return self._signer.sign(claims)


async def save_methods(base: str, users: Users) -> None:
    """One saved 4242... payment method per user, before anything is measured."""
    body = {
        "number": VISA_OK,
        "exp_month": 12,
        "exp_year": datetime.date.today().year + 3,
        "name": "Bench User",
        "billing_address": {"line1": "1 Main St", "postal_code": "SW1Y 4LE", "country": "GB"},
    }
    async with aiohttp.ClientSession() as session:
        for token in users.tokens():
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(f"{base}/v1/payment-methods", json=body, headers=headers) as r:
                if r.status != 201:
                    raise BenchFailure(f"saving a payment method: {r.status} {await r.text()}")
                users.methods.append(str((await r.json())["id"]))


# --- scenarios ---


@dataclass
class Result:
    name: str
    reps: list[Rep]
    server: str  # the process whose CPU per request is reported
    idle: float  # share of the CPUs busy just before, without the benchmark

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.reps]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def median(self, pick: Callable[[Rep], float]) -> float:
        return statistics.median(pick(r) for r in self.reps)

    def cores(self, name: str) -> float:
        return self.median(lambda r: r.cores.get(name, math.nan))

    def waiting(self, name: str) -> float:
        return self.median(lambda r: r.waiting.get(name, math.nan))

    def cpu_ms_per_request(self, name: str) -> float:
        return self.median(lambda r: r.cores.get(name, math.nan) / r.rate * 1000)


def headers_for(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def run_scenario(
    name: str,
    make_plans: Callable[[int], list[Plan]],
    args: argparse.Namespace,
    watch: dict[str, int],
    server: str,
    before_rep: Callable[[list[Rep]], None] | None = None,
) -> Result:
    wait_for_other_bench(args.wait_other)
    idle = busy_share()
    print(f"\n{name}: CPUs busy before it, without the benchmark: {idle:.0%}", flush=True)
    reps: list[Rep] = []
    for n in range(args.runs):
        if before_rep is not None:
            before_rep(reps)
        rep = run_load(make_plans(n), args.client_procs, args.warmup, args.duration, watch)
        shares = ", ".join(f"{k} {v:.0%}" for k, v in rep.cores.items())
        shares += f" ({server} waiting for a CPU {rep.waiting[server]:.0%})"
        print(
            f"  run {n + 1}: {rep.rate:8.1f} req/s  p50 {rep.p50_ms:7.2f} ms"
            f"  p99 {rep.p99_ms:7.2f} ms  CPU (of one core): {shares}; both CPUs {rep.busy:.0%}",
            flush=True,
        )
        if rep.unexpected:
            raise BenchFailure(f"{name}: unexpected answers {rep.unexpected}")
        reps.append(rep)
    return Result(name, reps, server, idle)


# --- pgbench ---


@dataclass
class PgbenchRep:
    tps: float
    p50_ms: float
    p99_ms: float
    postgres_cores: float
    pgbench_cores: float
    busy: float  # share of both CPUs


def pgbench_run(
    pgbench: Path,
    dsn: str,
    script: Path,
    clients: int,
    seconds: float,
    log_dir: Path | None,
    postmaster: int,
) -> PgbenchRep:
    parts = urlsplit(dsn)
    argv = [
        str(pgbench),
        *("-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)),
        *("-U", parts.username or "postgres", "-n", "-c", str(clients), "-j", "2"),
        *("-T", str(int(seconds)), "-f", str(script)),
    ]
    if log_dir is not None:
        # Every transaction's latency (microseconds, 3rd field), for p50/p99.
        argv += ["-l", "--log-prefix", str(log_dir / "tx")]
    argv.append(parts.path.lstrip("/"))
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=log_dir
    )
    # CPU is sampled inside the run, 1 s after its start and 1 s before its end: the
    # backends exit with pgbench, and a backend that has exited but that the postmaster
    # has not reaped yet is counted nowhere (measured: a third of the CPU went missing).
    started = time.monotonic()
    sleep_until(started + 1)
    watch = {"postgres": postmaster, "pgbench": proc.pid}
    before = snapshot(watch)
    sleep_until(started + seconds - 1)
    after = snapshot(watch)
    stdout, stderr = proc.communicate(timeout=seconds + 60)
    if proc.returncode != 0:
        raise BenchFailure(f"pgbench failed ({proc.returncode}):\n{stderr}{stdout}")
    found = re.search(r"^tps = ([\d.]+)", stdout, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", stdout, re.MULTILINE)
    if found is None:
        raise BenchFailure(f"no tps line in pgbench output:\n{stdout}")
    if failed is not None and int(failed.group(1)):
        raise BenchFailure(f"pgbench: {failed.group(1)} failed transactions")
    latencies: list[float] = []
    if log_dir is not None:
        for log in log_dir.glob("tx.*"):
            latencies += [int(line.split()[2]) / 1000 for line in log.read_text().splitlines()]
            log.unlink()
    latencies.sort()
    wall = after.at - before.at
    return PgbenchRep(
        float(found.group(1)),
        percentile(latencies, 50),
        percentile(latencies, 99),
        (after.cpu["postgres"] - before.cpu["postgres"]) / wall,
        (after.cpu["pgbench"] - before.cpu["pgbench"]) / wall,
        (after.machine[0] - before.machine[0]) / max(1, after.machine[1] - before.machine[1]),
    )


# --- PostgreSQL work per payment ---

_STAT_COLUMNS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")


async def database_stats(admin_dsn: str, database: str) -> dict[str, int]:
    # Asked from the admin database, so these queries are not counted in the sidecar's.
    conn = await asyncpg.connect(admin_dsn)
    try:
        row = await conn.fetchrow(
            f"SELECT {', '.join(_STAT_COLUMNS)} FROM pg_stat_database WHERE datname = $1",
            database,
        )
    finally:
        await conn.close()
    assert row is not None, database
    return {k: int(row[k]) for k in _STAT_COLUMNS}


async def ledger_charges(sandbox_url: str, api_key: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox_url}/v1/ledger", headers=headers) as r,
    ):
        if r.status != 200:
            raise BenchFailure(f"sandbox ledger: {r.status} {await r.text()}")
        charges: list[dict[str, Any]] = (await r.json())["charges"]
        return charges


async def payment_rows(store_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(store_url)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM payments GROUP BY status")
        counts = {str(r["status"]): int(r["n"]) for r in rows}
        for table in ("idempotency_keys", "attempts", "audit_log"):
            counts[f"rows in {table}"] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()
    return counts


# --- py-spy ---


@dataclass
class Profile:
    scenario: str
    samples: int
    by_work: list[tuple[str, float]]
    self_frames: list[tuple[str, float]]
    inboxpay_frames: list[tuple[str, float]]


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+):(?P<line>\d+)\)$")


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", str(REPO) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _interesting(file: str) -> bool:
    # The entry point, the app runner and the middlewares are under every request.
    return file.startswith("inboxpay/") and not file.startswith(_EVERYWHERE)


_EVERYWHERE = (
    "inboxpay/__main__.py",
    "inboxpay/cli/",
    "inboxpay/sidecar/app.py",
    "inboxpay/sidecar/middleware.py",
)


_WRITE = "_SelectorSocketTransport.write"

#: What a sample was doing, by its stack (first match wins): the sidecar's kinds of work.
_WORK: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    (
        "PostgreSQL round trips: socket sends (`asyncio/selector_events.py:1057` under asyncpg)",
        lambda leaf, stack: _WRITE in leaf and "asyncpg/" in stack,
    ),
    (
        "PostgreSQL round trips: pool release and its reset query (`asyncpg/pool.py:274`)",
        lambda leaf, stack: "PoolConnectionHolder.release" in stack,
    ),
    ("PostgreSQL round trips: rest of asyncpg", lambda leaf, stack: "asyncpg/" in stack),
    (
        "Ed25519 signature checks, token and card (`joserfc/_rfc8037/jws_eddsa.py:27`)",
        lambda leaf, stack: "jws_eddsa" in stack,
    ),
    (
        "bearer token, the rest (`inboxpay/sidecar/auth.py`)",
        lambda leaf, stack: "sidecar/auth.py" in stack,
    ),
    (
        "card, the rest (`inboxpay/card/header.py`)",
        lambda leaf, stack: "inboxpay/card/header.py" in stack,
    ),
    (
        "sealing the card to the processor, JWE ECDH-ES P-256 (`inboxpay/processor/seal.py:45`)",
        lambda leaf, stack: "processor/seal.py" in stack,
    ),
    (
        "HTTP to the processor (`inboxpay/processor/client.py`, aiohttp client)",
        lambda leaf, stack: "processor/client.py" in stack or "aiohttp/client" in stack,
    ),
    ("the vault (`inboxpay/vault/`)", lambda leaf, stack: "inboxpay/vault/" in stack),
    ("log lines (`logging`)", lambda leaf, stack: "(logging/" in stack),
    ("metrics (`prometheus_client`)", lambda leaf, stack: "prometheus_client" in stack),
    ("other socket sends (the answers)", lambda leaf, stack: _WRITE in leaf),
    (
        "event loop: socket reads, epoll, callbacks",
        lambda leaf, stack: "_read_ready" in stack or "selectors.py" in leaf or "asyncio/" in leaf,
    ),
    ("aiohttp server", lambda leaf, stack: "aiohttp/" in leaf),
    ("JSON", lambda leaf, stack: "(json/" in leaf),
    ("the store's own code (`inboxpay/store/`)", lambda leaf, stack: "inboxpay/store/" in leaf),
    ("other inboxpay code", lambda leaf, stack: "inboxpay/" in leaf),
)


def summarize_profile(scenario: str, raw: Path, top: int = 12) -> Profile:
    """py-spy's raw (collapsed) stacks: time by kind of work, the hottest leaf lines, and
    the inboxpay lines with the most time under them."""
    leaf: Counter[str] = Counter()
    work: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        frames_text = stack.split(";")
        for frame in frames_text:
            m = _FRAME.match(frame)
            if m is not None:
                frames.append((m["func"], m["file"], m["line"]))
        if not frames:
            continue
        func, file, lineno = frames[-1]
        leaf[f"{_short(file)}:{lineno} {func}"] += count
        kind = next((k for k, test in _WORK if test(frames_text[-1], stack)), "other")
        work[kind] += count
        seen: set[str] = set()
        for func, file, lineno in frames:
            name = f"{_short(file)}:{lineno} {func}"
            if _interesting(_short(file)) and name not in seen:
                seen.add(name)
                inclusive[name] += count
    share = 1 / max(1, total)
    return Profile(
        scenario,
        total,
        [(k, v * share) for k, v in work.most_common()],
        [(k, v * share) for k, v in leaf.most_common(top)],
        [(k, v * share) for k, v in inclusive.most_common(top * 2)],
    )


# --- the report ---


def fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def fmt_ms(v: float) -> str:
    return "—" if math.isnan(v) else (f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms")


def fmt_share(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.0%}"


@dataclass
class Report:
    args: argparse.Namespace
    machine: dict[str, str]
    results: list[Result]
    pgbench: list[PgbenchRep]
    per_payment: dict[str, float]
    payments: int
    ledger: int
    profiles: list[Profile]
    pgbench_idle: float

    def result(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)

    @property
    def pgbench_tps(self) -> float:
        return statistics.median(p.tps for p in self.pgbench)

    def table(self) -> str:
        rows = [
            "| Scenario | requests/s (median) | min-max | p50 | p99 | server CPU | "
            "server CPU per request |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.results:
            server = r.server
            rows.append(
                f"| {r.name} | {fmt_rate(r.rate)} | {fmt_rate(min(r.rates))}-"
                f"{fmt_rate(max(r.rates))} | {fmt_ms(r.median(lambda x: x.p50_ms))} | "
                f"{fmt_ms(r.median(lambda x: x.p99_ms))} | {fmt_share(r.cores(server))} | "
                f"{fmt_ms(r.cpu_ms_per_request(server))} |"
            )
        tps = [p.tps for p in self.pgbench]
        pg_ms = statistics.median(p.postgres_cores / p.tps * 1000 for p in self.pgbench)
        rows.append(
            f"| pgbench single-row INSERT (TPS) | {fmt_rate(self.pgbench_tps)} | "
            f"{fmt_rate(min(tps))}-{fmt_rate(max(tps))} | "
            f"{fmt_ms(statistics.median(p.p50_ms for p in self.pgbench))} | "
            f"{fmt_ms(statistics.median(p.p99_ms for p in self.pgbench))} | "
            f"{fmt_share(statistics.median(p.postgres_cores for p in self.pgbench))} "
            f"(PostgreSQL) | {fmt_ms(pg_ms)} |"
        )
        return "\n".join(rows)

    def cpu_table(self) -> str:
        names = ("hello", "sidecar", "sandbox", "postgres", "client")
        titles = ("hello-world", "sidecar", "sandbox", "PostgreSQL", "client processes")
        rows = [
            "| Scenario | " + " | ".join(titles) + " | both CPUs busy |",
            "|---|" + "---:|" * (len(names) + 1),
        ]
        for r in self.results:
            cells = [fmt_share(r.cores(n)) if n in r.reps[0].cores else "—" for n in names]
            cells[names.index(r.server)] += f" (+{fmt_share(r.waiting(r.server))} waiting)"
            rows.append(
                f"| {r.name} | "
                + " | ".join(cells)
                + f" | {fmt_share(r.median(lambda x: x.busy))} |"
            )
        pg = statistics.median(p.postgres_cores for p in self.pgbench)
        client = statistics.median(p.pgbench_cores for p in self.pgbench)
        busy = statistics.median(p.busy for p in self.pgbench)
        rows.append(
            f"| pgbench | — | — | — | {fmt_share(pg)} | {fmt_share(client)} (pgbench) "
            f"| {fmt_share(busy)} |"
        )
        return "\n".join(rows)

    def ratios(self) -> list[str]:
        hello = self.result(HELLO).rate
        verify = self.result(VERIFY).rate
        pay = self.result(PAY).rate
        writes = WRITES_PER_PAYMENT
        hello_ms = self.result(HELLO).cpu_ms_per_request("hello")
        verify_ms = self.result(VERIFY).cpu_ms_per_request("sidecar")
        pay_ms = self.result(PAY).cpu_ms_per_request("sidecar")
        lines = [
            f"verify / hello-world: {verify / hello:.2f}x "
            f"({fmt_rate(verify)} / {fmt_rate(hello)} req/s)",
            f"pay / hello-world: {pay / hello:.3f}x ({fmt_rate(pay)} / {fmt_rate(hello)} req/s)",
            f"pay / verify: {pay / verify:.2f}x",
            f"server CPU per request, against the hello-world's {fmt_ms(hello_ms)}: verify "
            f"{verify_ms / hello_ms:.0f}x ({fmt_ms(verify_ms)}), pay {pay_ms / hello_ms:.0f}x "
            f"({fmt_ms(pay_ms)})",
            f"pay / pgbench single-row insert TPS: {pay / self.pgbench_tps:.3f}x "
            f"({fmt_rate(pay)} / {fmt_rate(self.pgbench_tps)}); each payment is "
            f"{writes} single-statement write commits (see below), so the sidecar drives "
            f"{pay * writes:,.0f} write commits/s: {pay * writes / self.pgbench_tps:.2f}x "
            "pgbench's rate",
        ]
        return lines

    def per_payment_lines(self) -> list[str]:
        p = self.per_payment
        return [
            f"from the code (inboxpay/sidecar/paying.py, inboxpay/store/sql.py): "
            f"{WRITES_PER_PAYMENT} writes (idempotency key INSERT and UPDATE, attempt INSERT, "
            "payment INSERT and UPDATE, CVC failures DELETE, 2 audit INSERTs) and 5 reads "
            "(the invoice's active payment, the payment method, 2 attempt counts, the payment "
            "after its update), each write its own commit; 12 pool acquisitions, and asyncpg "
            "runs its reset query (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; "
            "RESET ALL;`) at each release: 24 commits and "
            f"{ROUND_TRIPS_PER_PAYMENT} round trips to PostgreSQL (BEGIN and COMMIT of the two "
            "transactions included)",
            f"measured commits (pg_stat_database xact_commit): {p['xact_commit']:.1f} per payment",
            f"rows inserted / updated / deleted: {p['tup_inserted']:.1f} / "
            f"{p['tup_updated']:.1f} / {p['tup_deleted']:.1f} per payment",
            f"rollbacks: {p['xact_rollback']:.2f} per payment",
        ]

    def markdown(self, command: str, for_docs: bool) -> str:
        a = self.args
        m = self.machine
        out: list[str] = []
        if for_docs:
            out += [
                BEGIN,
                "",
                "<!-- generated by bench/sidecar_throughput.py --write-docs; "
                "edits between these markers are overwritten -->",
                "",
                "### Method",
                "",
                *METHOD,
                "",
                "### Results",
                "",
            ]
        out += [
            f"Measured {m['date']} with:",
            "",
            "```sh",
            command,
            "```",
            "",
            f"- CPUs (nproc): {m['nproc']}; CPU model: {m['cpu']}; kernel {m['kernel']}",
            f"- Python {m['python']}, aiohttp {m['aiohttp']}, asyncpg {m['asyncpg']}; "
            f"PostgreSQL {m['postgres']} ({m['pgbench']})",
            f"- load: {a.clients} concurrent clients from {a.client_procs} client processes; "
            f"{a.warmup:g} s warm-up, then {a.duration:g} s measured; {a.runs} runs per "
            "scenario; medians (p50/p99: the median of the runs' percentiles), min-max over runs",
            "- other load on the machine, CPUs busy 1 s before each scenario: "
            + ", ".join(
                [f"{r.name} {r.idle:.0%}" for r in self.results]
                + [f"pgbench {self.pgbench_idle:.0%}"]
            ),
            "",
            self.table(),
            "",
            f"CPU used during the measured window (100% = one CPU; there are {m['nproc']}). "
            "Waiting: the server process was ready to run but both CPUs were taken "
            "(`/proc/PID/schedstat`), so on CPU + waiting near 100% means it had work all "
            "the time:",
            "",
            self.cpu_table(),
            "",
            "Ratios:",
            "",
            *(f"- {line}" for line in self.ratios()),
            "",
            f"PostgreSQL work per payment, measured over all {self.payments} payments of the "
            "run (warm-ups included):",
            "",
            *(f"- {line}" for line in self.per_payment_lines()),
            "",
            f"Checks: every answer was as expected (hello 200; verify 200 `payable`; pay 201 "
            f"`succeeded`); the sandbox ledger holds {self.ledger} charges for "
            f"{self.payments} succeeded payments, the payments table {self.payments} "
            "`succeeded` rows and no others.",
        ]
        for prof in self.profiles:
            out += [
                "",
                f"py-spy, sidecar process, {prof.scenario} ({prof.samples} samples of busy time "
                f"at {a.profile_rate} Hz, one extra run; shares of the samples):",
                "",
                "- by kind of work: "
                + "; ".join(f"{k} {v:.0%}" for k, v in prof.by_work if v >= 0.01),
                "- hottest lines (self): "
                + "; ".join(f"`{k}` {v:.0%}" for k, v in prof.self_frames[:8]),
                "- inboxpay lines with the most time under them: "
                + "; ".join(f"`{k}` {v:.0%}" for k, v in prof.inboxpay_frames[:14] if v >= 0.02),
            ]
        if for_docs:
            out += ["", END]
        return "\n".join(out)


METHOD = [
    "`bench/sidecar_throughput.py` (not a test, never run by CI):",
    "",
    "- **Servers,** each its own process on loopback: a throwaway PostgreSQL 15 cluster "
    "(`tests/store/pg.py`: `fsync`, `synchronous_commit` and `full_page_writes` off, so "
    "neither the sidecar nor pgbench waits for a disk flush), `inboxpay processor-sandbox` "
    "and `inboxpay sidecar` (`--log-level info`) with the config `inboxpay init` writes, "
    "`[storage] url` set to a fresh database in that cluster and the three counting "
    "`[limits]` (payment attempts per hour, security-code failures, payment methods per day) "
    "at their maximum, 100000, so that no rate limit shapes a figure.",
    "- **Client:** aiohttp, asyncio, in separate client processes (default 2, 16 clients "
    "each: one aiohttp client process tops out near 7,000 hello-world requests/s on this "
    "machine, below what the server does); 32 clients in a closed loop, each with its own "
    "kept-alive connection and its own user (a token minted with the config's issuer key, "
    "`inboxpay.sidecar.auth.mint`). Latency: from sending a request to its whole answer "
    "read, for the requests that complete inside the measured window.",
    "- **Scenarios:** (1) a bare aiohttp `web.Application` with one GET handler, its own "
    "process: the HTTP floor; (2) `POST /v1/cards/verify` with cards signed with the "
    "config's card-signing key as the milter signs them, one recipient (the user's HMAC "
    "with the recipient key), 16 cards per user in turn; (3) `POST /v1/payments` with the "
    "user's saved 4242... payment method (saved before anything is measured), a good "
    "security code and a new `Idempotency-Key` each time, every request for a different "
    "invoice (cards signed ahead, untimed); (4) `pgbench -n -c 32 -j 2 -T 10` with a script "
    "of `\\set r random(1, 1000000)` and `INSERT INTO bench(v) VALUES (:r);` on the same "
    "cluster, its own database (after an untimed 3 s run), the simple query protocol.",
    "- **Checks, or the run fails:** every answer is the expected one (hello 200, verify "
    "200 `payable`, pay 201 `succeeded`); after the payments the sandbox's ledger holds "
    "exactly one charge per succeeded payment and the payments table nothing else.",
    "- **CPU** of each process from `/proc` during the measured window (PostgreSQL: the "
    "postmaster and all its backends; pgbench: from 1 s after its start to 1 s before its "
    "end), and of the client processes.",
    "- **Profile** (`--profile`): py-spy (`/tmp/pyspy-venv/bin/py-spy record --nonblocking`, "
    "250 Hz) on the sidecar during one extra verify run and one extra pay run, after the "
    "measured ones; its shares are of the samples in which the sidecar was busy.",
    "- The script waits while `bench/milter_throughput.py` runs, so the two never share the CPUs.",
]


# --- docs ---


def write_docs(block: str) -> None:
    text = DOCS.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Sidecar\n\n" + block + "\n"
    DOCS.write_text(text)


def machine_facts(pg_version: str, pgbench: Path) -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(
        [str(pgbench), "--version"], capture_output=True, text=True, check=False
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "asyncpg": asyncpg.__version__,
        "postgres": pg_version,
        "pgbench": version.stdout.strip(),
    }


# --- the run ---


@contextlib.contextmanager
def running(*processes: Child) -> Iterator[None]:
    started: list[Child] = []
    try:
        for p in processes:
            p.start(timeout=60)
            started.append(p)
        yield
    finally:
        for p in reversed(started):
            p.stop()


def profile_run(
    args: argparse.Namespace,
    name: str,
    plans: list[Plan],
    watch: dict[str, int],
    work: Path,
) -> Profile:
    raw = work / f"pyspy-{plans[0].kind}.txt"
    spy: list[subprocess.Popen[bytes]] = []

    def start_spy() -> None:
        argv = [
            str(args.profile),
            "record",
            "--pid",
            str(watch["sidecar"]),
            "--duration",
            str(int(args.duration)),
            "--rate",
            str(args.profile_rate),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ]
        spy.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    run_load(plans, args.client_procs, args.warmup, args.duration, watch, at_window=start_spy)
    for p in spy:
        _, err = p.communicate(timeout=60)
        if p.returncode != 0 or not raw.exists():
            raise BenchFailure(f"py-spy failed ({p.returncode}): {err.decode(errors='replace')}")
    return summarize_profile(name, raw)


def bench(args: argparse.Namespace, work: Path) -> Report:
    waited = wait_for_other_bench(args.wait_other)
    if waited:
        print(f"waited {waited:.0f} s for {OTHER_BENCH}", flush=True)
    pgbench = find_bindir() / "pgbench"
    with throwaway_cluster("inboxpay_bench") as admin_dsn:
        return asyncio.run(_bench_cluster(args, work, admin_dsn, pgbench))


async def _bench_cluster(
    args: argparse.Namespace, work: Path, admin_dsn: str, pgbench: Path
) -> Report:
    conn = await asyncpg.connect(admin_dsn)
    try:
        pg_version = str(await conn.fetchval("SHOW server_version"))
        postmaster = postmaster_pid(str(await conn.fetchval("SHOW data_directory")))
    finally:
        await conn.close()
    machine = machine_facts(pg_version, pgbench)
    async with fresh_database(admin_dsn) as store_url, fresh_database(admin_dsn) as bench_dsn:
        config_path = write_config(work / "inboxpay", store_url)
        cfg = config_module.load(config_path)
        sidecar_url = f"http://{cfg.sidecar.host}:{cfg.sidecar.port}"
        assert cfg.sandbox is not None, "inboxpay init writes a [sandbox] table"
        sandbox_url = f"http://{cfg.sandbox.host}:{cfg.sandbox.port}"
        hello_port = free_port()
        hello = Child(
            [sys.executable, str(Path(__file__).resolve()), "--serve-hello", str(hello_port)],
            f"http://127.0.0.1:{hello_port}",
            work / "hello.log",
        )
        sandbox = inboxpay_process(
            "processor-sandbox", config_path, sandbox_url, work / "sandbox.log"
        )
        sidecar = inboxpay_process("sidecar", config_path, sidecar_url, work / "sidecar.log")
        with running(hello, sandbox, sidecar):
            watch = {"sidecar": sidecar.pid, "sandbox": sandbox.pid, "postgres": postmaster}
            users = Users(cfg, [f"bench{i:02d}@example.com" for i in range(args.clients)])
            await save_methods(sidecar_url, users)
            return await asyncio.to_thread(
                _measure,
                args,
                work,
                users,
                (hello, sidecar_url, sandbox_url),
                watch,
                (admin_dsn, store_url, bench_dsn, pgbench, postmaster),
                machine,
            )


def _measure(
    args: argparse.Namespace,
    work: Path,
    users: Users,
    urls: tuple[Child, str, str],
    watch: dict[str, int],
    databases: tuple[str, str, str, Path, int],
    machine: dict[str, str],
) -> Report:
    """The measurements proper, in a plain thread: run_load blocks while it waits."""
    hello, sidecar_url, sandbox_url = urls
    admin_dsn, store_url, bench_dsn, pgbench, postmaster = databases
    cfg = users.config
    mint_cards = CardMint(cfg)
    results: list[Result] = []

    # (1) the HTTP floor
    def hello_plans(_: int) -> list[Plan]:
        return [Plan("hello", f"{hello.url}/", {}) for _ in users.names]

    hello_watch = {"hello": hello.pid}
    results.append(run_scenario(HELLO, hello_plans, args, hello_watch, "hello"))

    # (2) card verification: read-only, so a few cards per user in turn are enough
    verify_cards = {
        u: [json.dumps({"card": mint_cards.card(u)}).encode() for _ in range(16)]
        for u in users.names
    }

    def verify_plans(_: int) -> list[Plan]:
        return [
            Plan("verify", f"{sidecar_url}/v1/cards/verify", headers_for(t), verify_cards[u])
            for u, t in zip(users.names, users.tokens(), strict=True)
        ]

    verify = run_scenario(VERIFY, verify_plans, args, watch, "sidecar")
    results.append(verify)
    verify_done = time.monotonic()

    # (4) pgbench, before the payments: by the time they start, the sidecar database's
    # statistics from the verify runs have been flushed (backends flush them lazily).
    pgbench_idle, pgbench_reps = run_pgbench(args, pgbench, bench_dsn, postmaster, work)

    # (3) payments: every request another invoice, so cards are signed ahead, untimed
    pay_bodies: dict[str, list[bytes]] = {u: [] for u in users.names}
    pay_plans_now: list[Plan] = []
    store_db = urlsplit(store_url).path.lstrip("/")
    # Backends flush their statistics within about 10 s of going idle (PostgreSQL 15): the
    # verify runs' reads must be counted before the payments start, not among them.
    sleep_until(verify_done + STATS_FLUSH)
    stats0 = asyncio.run(database_stats(admin_dsn, store_db))

    def refill(reps: list[Rep]) -> None:
        # Enough for the fastest rate seen so far (at first verify's: paying verifies too).
        rate = max([r.rate for r in reps] + [0.0]) or verify.rate
        need = math.ceil(rate * (args.warmup + args.duration) * CARD_MARGIN / args.clients) + 20
        method = dict(zip(users.names, users.methods, strict=True))
        for u in users.names:
            while len(pay_bodies[u]) < need:
                body = {
                    "card": mint_cards.card(u),
                    "payment_method_id": method[u],
                    "security_code": GOOD_CODE,
                }
                pay_bodies[u].append(json.dumps(body).encode())

    def pay_plans(n: int) -> list[Plan]:
        tag = uuid.uuid4().hex[:8]
        plans = [
            Plan(
                "pay",
                f"{sidecar_url}/v1/payments",
                headers_for(t),
                pay_bodies[u],
                f"bench-{tag}-{i}-",
            )
            for i, (u, t) in enumerate(zip(users.names, users.tokens(), strict=True))
        ]
        pay_plans_now[:] = plans
        return plans

    def keep_unused(reps: list[Rep]) -> None:
        # run_load trimmed the plans' bodies to the unused ones: keep those for the next run.
        for u, plan in zip(users.names, pay_plans_now, strict=False):  # none before run 1
            pay_bodies[u] = plan.bodies
        refill(reps)

    pay_result = run_scenario(PAY, pay_plans, args, watch, "sidecar", before_rep=keep_unused)
    keep_unused(pay_result.reps)
    results.insert(2, pay_result)
    # Payments made in every phase: warm-ups and the requests in flight when a window ended.
    payments = sum(r.as_expected for r in pay_result.reps)
    charges = asyncio.run(ledger_charges(sandbox_url, api_key(cfg)))
    rows = asyncio.run(payment_rows(store_url))
    print(f"\nledger: {len(charges)} charges; payments table: {rows}", flush=True)
    if len(charges) != payments or len({c["idempotency_key"] for c in charges}) != payments:
        raise BenchFailure(f"{payments} payments succeeded but the ledger holds {len(charges)}")
    if {k: v for k, v in rows.items() if not k.startswith("rows in")} != {"succeeded": payments}:
        raise BenchFailure(f"{payments} payments succeeded but the payments table holds {rows}")
    time.sleep(STATS_FLUSH)
    stats1 = asyncio.run(database_stats(admin_dsn, store_db))
    per_payment = {k: (stats1[k] - stats0[k]) / payments for k in _STAT_COLUMNS}

    profiles: list[Profile] = []
    if args.profile is not None:
        profiles.append(profile_run(args, VERIFY, verify_plans(0), watch, work))
        refill(pay_result.reps)
        profiles.append(profile_run(args, PAY, pay_plans(0), watch, work))
    return Report(
        args,
        machine,
        results,
        pgbench_reps,
        per_payment,
        payments,
        len(charges),
        profiles,
        pgbench_idle,
    )


def api_key(cfg: Config) -> str:
    assert cfg.sandbox is not None, "inboxpay init writes a [sandbox] table"
    return cfg.sandbox.api_key_file.read_text("ascii").strip()


def run_pgbench(
    args: argparse.Namespace, pgbench: Path, dsn: str, postmaster: int, work: Path
) -> tuple[float, list[PgbenchRep]]:
    async def create_table() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE bench (v integer)")
        finally:
            await conn.close()

    asyncio.run(create_table())
    script = work / "insert.sql"
    script.write_text("\\set r random(1, 1000000)\nINSERT INTO bench(v) VALUES (:r);\n")
    logs = work / "pgbench-logs"
    logs.mkdir()
    wait_for_other_bench(args.wait_other)
    idle = busy_share()
    print(f"\npgbench: CPUs busy before it, without the benchmark: {idle:.0%}", flush=True)
    warmup = max(3.0, args.warmup)  # pgbench -T takes whole seconds; the CPU window needs 1 s
    pgbench_run(pgbench, dsn, script, args.clients, warmup, None, postmaster)
    reps = []
    for n in range(args.runs):
        rep = pgbench_run(pgbench, dsn, script, args.clients, args.duration, logs, postmaster)
        print(
            f"  run {n + 1}: {rep.tps:8.1f} TPS  p50 {rep.p50_ms:7.2f} ms  p99 {rep.p99_ms:7.2f} ms"
            f"  PostgreSQL {rep.postgres_cores:.0%} pgbench {rep.pgbench_cores:.0%} of one core",
            flush=True,
        )
        reps.append(rep)
    return idle, reps


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--client-procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--warmup", type=float, default=3.0, help="untimed seconds before each run")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--runs", type=int, default=3, help="runs per scenario (default 3)")
    p.add_argument(
        "--profile",
        type=Path,
        nargs="?",
        const=PYSPY,
        default=None,
        help=f"py-spy the sidecar during one extra verify and pay run (default {PYSPY})",
    )
    p.add_argument("--profile-rate", type=int, default=250, help="py-spy samples/s")
    p.add_argument("--write-docs", action="store_true", help="rewrite the block in docs")
    p.add_argument("--json", type=Path, help="write every run's figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.add_argument(
        "--wait-other", type=float, default=1200, help=f"seconds to wait for {OTHER_BENCH}"
    )
    p.add_argument("--serve-hello", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_hello is not None:
        serve_hello(args.serve_hello)
        return 0
    if args.duration < 3:
        p.error("--duration must be at least 3 s (pgbench's CPU is sampled 1 s inside each end)")
    if args.clients % args.client_procs:
        p.error("--clients must be a multiple of --client-procs")
    if args.profile is not None and not args.profile.exists():
        p.error(
            f"{args.profile} not found: python3 -m venv /tmp/pyspy-venv && "
            "/tmp/pyspy-venv/bin/pip install py-spy"
        )
    command = ".venv/bin/python bench/sidecar_throughput.py " + shlex.join(
        list(argv if argv is not None else sys.argv[1:])
    )
    work = Path(tempfile.mkdtemp(prefix="inboxpay-sidecar-bench-"))
    failed = True
    try:
        report = bench(args, work)
        failed = False
    except BenchFailure as e:
        print(f"\nBENCHMARK FAILED: {e}\nwork files kept in {work}", file=sys.stderr)
        return 1
    finally:
        if not failed and not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
    print()
    print(report.markdown(command.strip(), for_docs=False))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": report.machine,
                    "scenarios": {r.name: [asdict(x) for x in r.reps] for r in report.results},
                    "pgbench": [asdict(x) for x in report.pgbench],
                    "per_payment": report.per_payment,
                    "profiles": [asdict(x) for x in report.profiles],
                },
                indent=2,
            )
        )
    if args.write_docs:
        write_docs(report.markdown(command.strip(), for_docs=True))
        print(f"\nwrote {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
