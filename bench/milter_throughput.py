#!/usr/bin/env python3
"""Milter throughput: smtp-source -> private Postfix (+ milter) -> smtp-sink, on loopback.

Compares, in one interleaved run: no milter, a null pymilter milter (plain, and
adding one header), InboxPay, OpenDKIM verify-only and dkimpy-milter verify-only,
each over a unix and an inet socket. Traffic is 80% ordinary DKIM-signed mail
and 20% signed partner invoices, sent by one smtp-source per kind at once. A run
whose Postfix log has a milter warning, whose mail did not all reach smtp-sink,
or whose milter shows no sign of having done its work fails the whole benchmark:
with milter_default_action = accept, a milter Postfix cannot reach is skipped
silently and looks fast.

Not a test and not run by CI. See bench/README.md; run bench/setup.sh first.

    .venv/bin/python bench/milter_throughput.py --runs 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The e2e harness and the bench modules are imported as packages of the repo.
sys.path.insert(0, str(REPO))

from bench import cpu, report, traffic  # noqa: E402
from bench.milters import (  # noqa: E402
    MILTERS,
    TRANSPORTS,
    DumpCounts,
    Expected,
    MilterProcess,
    Shared,
    count_dump,
)
from bench.relay_postfix import RelayPostfix  # noqa: E402
from inboxpay.errors import InboxPayError  # noqa: E402
from tests.e2e.dnsserver import DnsServer, Zones  # noqa: E402
from tests.e2e.postfix import milter_warnings  # noqa: E402
from tests.e2e.procs import accepts_tcp, free_port, stop, tail, wait_until  # noqa: E402

CONFIGS = (
    "none",
    "null",
    "nullhdr",
    "inboxpay",
    "inboxpay-all",
    "inboxpay-1w",
    "opendkim",
    "dkimpy",
)
PROGRAMS = {
    "postfix": "apt-get install postfix",
    "smtp-source": "apt-get install postfix (it ships smtp-source)",
    "smtp-sink": "apt-get install postfix (it ships smtp-sink)",
    "dnsmasq": "apt-get install dnsmasq-base",
}
INVOICE_SHARE = 0.2
# Other work on a shared machine skews every figure: before each run the benchmark
# waits (up to --quiet-wait seconds) until the CPUs are at most this busy without it.
QUIET = 0.15
POLL = 0.02  # seconds between looks at the Postfix log while waiting for delivery


# --profile: py-spy records every InboxPay run's timed phase into this folder.
PYSPY = Path("/tmp/inboxpay-venv-pyspy/bin/py-spy")
profile_dir: Path | None = None


class BenchFailure(Exception):
    """A run that does not measure what it claims to; the benchmark stops."""


def program(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise BenchFailure(f"{name} not found: {PROGRAMS[name]} (or run bench/setup.sh)")
    return path


@dataclass(frozen=True)
class Cell:
    config: str
    transport: str  # "-" for bare Postfix

    @property
    def key(self) -> str:
        return self.config if self.transport == "-" else f"{self.config}-{self.transport}"


@dataclass(frozen=True)
class Load:
    """How many sessions and messages each smtp-source sends."""

    sessions: dict[str, int]
    messages: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.messages.values())

    @property
    def invoices(self) -> int:
        return self.messages["invoice"]


def split_load(sessions: int, messages: int, share: float = INVOICE_SHARE) -> Load:
    """Sessions and messages between ordinary mail and invoices (``share`` invoices)."""
    inv_sessions = max(1, round(sessions * share))
    inv_messages = max(inv_sessions, round(messages * share))
    return Load(
        sessions={"ordinary": sessions - inv_sessions, "invoice": inv_sessions},
        messages={"ordinary": messages - inv_messages, "invoice": inv_messages},
    )


class Sink:
    """smtp-sink on a loopback port, every transaction appended to one dump file."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self.dir = run_dir / "sink"
        self.dump = self.dir / "dump"
        self.output = run_dir / "smtp-sink.out"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir()
        # As root smtp-sink must drop privileges (-u); the dump is written as that user.
        shutil.chown(self.dir, "nobody")
        cmd = [program("smtp-sink"), "-u", "nobody", "-D", str(self.dump)]
        cmd += [f"127.0.0.1:{self.port}", "256"]
        with self.output.open("wb") as out:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_until(lambda: accepts_tcp("127.0.0.1", self.port), 10, f"smtp-sink :{self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)


def start_sources(
    postfix: RelayPostfix, mail: traffic.Traffic, load: Load, run_dir: Path, phase: str
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """One smtp-source per kind of message, all at once; their output goes to files."""
    procs = []
    for sender in traffic.SENDERS:
        cmd = [
            program("smtp-source"),
            *("-s", str(load.sessions[sender.kind]), "-m", str(load.messages[sender.kind])),
            *("-f", sender.mail_from, "-t", traffic.RECIPIENT, "-M", sender.helo),
            *("-F", str(mail.files[sender.kind]), f"127.0.0.1:{postfix.smtp_port}"),
        ]
        out_path = run_dir / f"smtp-source-{phase}-{sender.kind}.out"
        with out_path.open("wb") as out:
            procs.append(
                (subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out), out_path)
            )
    return procs


class DeliveryWatch:
    """Counts 'status=sent' in the Postfix log from an offset, reading only what is new."""

    def __init__(self, postfix: RelayPostfix) -> None:
        self.postfix = postfix
        self.offset = postfix.log_size()
        self.sent = 0
        self._partial = b""

    def poll(self) -> None:
        data = self.postfix.log_bytes_since(self.offset)
        self.offset += len(data)
        data = self._partial + data
        # Only whole lines: a record cut mid-write is counted on the next poll.
        cut = data.rfind(b"\n") + 1
        lines, self._partial = data[:cut], data[cut:]
        self.sent += lines.count(b"status=sent")
        for bad in (b"status=bounced", b"status=deferred"):
            if bad in lines:
                line = next(x for x in lines.splitlines() if bad in x)
                raise BenchFailure(f"Postfix did not deliver to smtp-sink: {line.decode()}")


def send_and_wait(
    postfix: RelayPostfix,
    mail: traffic.Traffic,
    load: Load,
    run_dir: Path,
    phase: str,
    milter: MilterProcess | None,
) -> tuple[float, float]:
    """Send ``load`` and wait until Postfix relayed all of it; (accepted_s, delivered_s)."""
    watch = DeliveryWatch(postfix)
    start = time.monotonic()
    sources = start_sources(postfix, mail, load, run_dir, phase)
    try:
        return _wait_for_delivery(postfix, load, phase, milter, watch, start, sources)
    finally:
        for p, _ in sources:
            stop(p)  # only those still running: a failure or a signal cut the run short


def _wait_for_delivery(
    postfix: RelayPostfix,
    load: Load,
    phase: str,
    milter: MilterProcess | None,
    watch: DeliveryWatch,
    start: float,
    sources: list[tuple[subprocess.Popen[bytes], Path]],
) -> tuple[float, float]:
    accepted = None
    deadline = start + 60 + load.total / 20  # far beyond the slowest configuration
    while True:
        now = time.monotonic()
        if accepted is None and all(p.poll() is not None for p, _ in sources):
            accepted = now - start
            for p, out in sources:
                if p.returncode != 0:
                    raise BenchFailure(f"smtp-source exited {p.returncode}:\n{tail(out)}")
        watch.poll()
        if watch.sent >= load.total and accepted is not None:
            return accepted, now - start
        if milter is not None:
            milter.check_alive()
        if now > deadline:
            raise BenchFailure(
                f"{phase}: {watch.sent} of {load.total} messages reached smtp-sink in "
                f"{now - start:.0f} s; Postfix log {postfix.paths.log}:\n{tail(postfix.paths.log)}"
            )
        time.sleep(POLL)


@dataclass(frozen=True)
class Usage:
    """CPU counters at one moment: the whole machine's, the mail path's, the milter's."""

    busy: int  # jiffies of all CPUs not idle or waiting for I/O
    total: int
    path_s: float  # Postfix, milter, smtp-source, smtp-sink, dnsmasq
    milter_s: float

    @classmethod
    def now(cls, milter: MilterProcess | None = None, postfix: RelayPostfix | None = None) -> Usage:
        fields = Path("/proc/stat").read_text("ascii").splitlines()[0].split()[1:]
        ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = ticks[3] + ticks[4]
        path = cpu.mail_path_seconds(postfix.master_pid()) if postfix else 0.0
        return cls(sum(ticks) - idle, sum(ticks), path, milter.cpu_seconds() if milter else 0.0)

    def busy_since(self, start: Usage) -> float:
        """Share of the machine's CPU time that was busy (1.0: every core, all the time)."""
        return (self.busy - start.busy) / max(1, self.total - start.total)


def wait_for_quiet(limit: float) -> float:
    """Wait up to ``limit`` s for the machine to be nearly idle; return the last busy share."""
    deadline = time.monotonic() + limit
    while True:
        start = Usage.now()
        time.sleep(1.0)
        busy = Usage.now().busy_since(start)
        if busy <= QUIET or time.monotonic() >= deadline:
            return busy


def check_run(
    cell: Cell,
    postfix: RelayPostfix,
    milter_log: str,
    dump: DumpCounts,
    expected: Expected,
) -> None:
    """Fail unless the run really went through the milter and reached smtp-sink."""
    log = postfix.paths.log.read_text("utf-8", errors="replace")
    problems = []
    warnings = milter_warnings(log)
    if warnings:
        # With milter_default_action = accept this is the only sign Postfix skipped it.
        problems.append(
            f"Postfix logged {len(warnings)} milter warnings, the milter was skipped; first:"
        )
        problems += [f"  {w}" for w in warnings[:3]]
    sent = log.count("status=sent")
    if sent != expected.messages:
        problems.append(f"Postfix logged {sent} 'status=sent', expected {expected.messages}")
    if dump.messages != expected.messages:
        problems.append(f"smtp-sink got {dump.messages} messages, expected {expected.messages}")
    if cell.config != "none":
        problems += MILTERS[cell.config].problems(milter_log, dump, expected)
    if problems:
        raise BenchFailure(
            f"run {cell.key} is not valid:\n  "
            + "\n  ".join(problems)
            + f"\n(files in {postfix.paths.root})"
        )


def run_once(
    cell: Cell,
    rep: int,
    shared: Shared,
    mail: traffic.Traffic,
    load: Load,
    warmup: Load,
    background: float,
) -> report.RunResult:
    run_dir = shared.workdir / f"run-{rep:02d}-{cell.key}"
    run_dir.mkdir()
    run_dir.chmod(0o755)  # Postfix daemons and smtp-sink run as other users
    sink = Sink(run_dir)
    milter = None
    if cell.config != "none":
        milter = MilterProcess(MILTERS[cell.config], run_dir, cell.transport, shared)
    postfix_socket = milter.socket.postfix() if milter else None
    sessions = sum(load.sessions.values())
    postfix = RelayPostfix(
        run_dir,
        free_port(),
        sink.port,
        shared.authserv_id,
        postfix_socket,
        sessions,
        traffic.RECIPIENT,
    )
    milter_log = ""
    try:
        sink.start()
        if milter is not None:
            milter.start()
        postfix.start()
        # Warm-up: smtpd processes forked, caches and key parsing paid, before timing.
        send_and_wait(postfix, mail, warmup, run_dir, "warmup", milter)
        spy = start_profile(cell, rep, milter)
        before = Usage.now(milter, postfix)
        try:
            accepted_s, delivered_s = send_and_wait(postfix, mail, load, run_dir, "timed", milter)
        finally:
            after = Usage.now(milter, postfix)
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(timeout=60)
        rss = milter.peak_rss_kib() if milter else None
    finally:
        postfix.stop()
        if milter is not None:
            milter_log = milter.stop()
        sink.stop()
    expected = Expected(warmup.total + load.total, warmup.invoices + load.invoices)
    check_run(cell, postfix, milter_log, count_dump(sink.dump), expected)
    return report.RunResult(
        config=cell.config,
        transport=cell.transport,
        rep=rep,
        messages=load.total,
        delivered_s=delivered_s,
        accepted_s=accepted_s,
        peak_rss_kib=rss,
        machine_busy=after.busy_since(before),
        milter_cpu_ms=1000 * (after.milter_s - before.milter_s) / load.total,
        path_cpu_ms=1000 * (after.path_s - before.path_s) / load.total,
        background_busy=background,
    )


def start_profile(
    cell: Cell, rep: int, milter: MilterProcess | None
) -> subprocess.Popen[bytes] | None:
    if profile_dir is None or milter is None or not cell.config.startswith("inboxpay"):
        return None
    out = profile_dir / f"{cell.key}-{rep}.txt"
    cmd = [str(PYSPY), "record", "--subprocesses", "--nonblocking", "--gil", "--rate", "250"]
    cmd += ["--format", "raw", "--output", str(out), "--pid", str(milter.pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cells(configs: list[str], transports: list[str]) -> list[Cell]:
    out = []
    for config in configs:
        if config == "none":
            out.append(Cell("none", "-"))
        else:
            out += [Cell(config, t) for t in transports]
    return out


class BenchDns(DnsServer):
    """The e2e dnsmasq, answering with a TTL: dnsmasq's default for its own records is 0.

    With TTL 0 no resolver may cache, and every message would pay every lookup
    again, which no real sender's records ask for (InboxPay then spends half its
    time in DNS).
    """

    def __init__(self, workdir: Path, port: int, zones: Zones, ttl: int) -> None:
        super().__init__(workdir, port, zones)
        self.ttl = ttl

    def command(self, binary: str) -> list[str]:
        # No query log: with milters that do not cache, it would cost CPU per message.
        base = [arg for arg in super().command(binary) if arg != "--log-queries"]
        return [*base, f"--local-ttl={self.ttl}"]


def start_dns(shared_dir: Path, mail: traffic.Traffic, ttl: int) -> DnsServer:
    dns = BenchDns(shared_dir, free_port(), traffic.zones(mail.keys), ttl)
    dns.start()
    # A DKIM key is longer than one TXT string: prove the split is served whole.
    dns.check_txt(mail.keys[traffic.INVOICES.domain].record_name)
    dns.check_txt(traffic.INVOICES.domain)
    return dns


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=5, help="repetitions of every configuration")
    p.add_argument("--messages", type=int, default=1500, help="timed messages per run (80/20)")
    p.add_argument("--sessions", type=int, default=20, help="parallel SMTP sessions (80/20)")
    p.add_argument("--warmup", type=int, default=50, help="untimed messages sent first in each run")
    p.add_argument(
        "--dns-ttl", type=int, default=300, help="TTL of every bench DNS record (0: no caching)"
    )
    p.add_argument(
        "--invoice-share",
        type=float,
        default=INVOICE_SHARE,
        help="share of partner invoices in the load (0.2: the 80/20 mix; 0.01: 99/1)",
    )
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"subset of {','.join(CONFIGS)}")
    p.add_argument("--transports", default=",".join(TRANSPORTS), help="unix,inet or one of them")
    p.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--no-docs", action="store_true", help="print the table only")
    p.add_argument("--json", type=Path, help="also write every run's figures here")
    p.add_argument(
        "--profile",
        type=Path,
        help="record each InboxPay run's timed phase with py-spy into this folder "
        "(bench/setup.sh --profile installs it; the figures of those runs are not comparable)",
    )
    p.add_argument("--workdir-base", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--keep", action="store_true", help="keep queues, logs and dumps")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        # argparse %-formats help strings: a literal percent sign must be doubled.
        help=f"before each run, wait up to this many s for the CPUs to be under {QUIET:.0%}% busy",
    )
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.transports = [t for t in args.transports.split(",") if t]
    unknown = [c for c in args.configs if c not in CONFIGS]
    unknown += [t for t in args.transports if t not in TRANSPORTS]
    if unknown or args.runs < 1 or args.sessions < 2 or args.messages < args.sessions:
        p.error(f"bad arguments {unknown or ''} (need runs >= 1, messages >= sessions >= 2)")
    return args


def preflight(configs: list[str]) -> None:
    for name in PROGRAMS:
        program(name)
    for config in configs:
        reason = MILTERS[config].available() if config != "none" else None
        if reason is not None:
            raise BenchFailure(reason)


def benchmark(args: argparse.Namespace, workdir: Path) -> list[report.RunResult]:
    mail = traffic.build(workdir)
    load = split_load(args.sessions, args.messages, args.invoice_share)
    warmup = split_load(args.sessions, max(args.warmup, args.sessions), args.invoice_share)
    dns = start_dns(workdir, mail, args.dns_ttl)
    shared = Shared(workdir, dns.port, traffic.AUTHSERV_ID)
    plan = cells(args.configs, args.transports)
    results = []
    try:
        for rep in range(args.runs):
            # Round-robin, starting one cell later each time, so no configuration
            # always runs first (cold machine) or right after the same neighbour.
            order = plan[rep % len(plan) :] + plan[: rep % len(plan)]
            for cell in order:
                background = wait_for_quiet(args.quiet_wait)
                result = run_once(cell, rep, shared, mail, load, warmup, background)
                results.append(result)
                print(f"run {rep + 1}/{args.runs} {cell.key:14} {result.summary()}", flush=True)
                if not args.keep:
                    shutil.rmtree(workdir / f"run-{rep:02d}-{cell.key}", ignore_errors=True)
    finally:
        dns.stop()
    return results


def setup_facts(
    args: argparse.Namespace, mail_sizes: dict[str, int], results: list[report.RunResult]
) -> dict[str, str]:
    load = split_load(args.sessions, args.messages, args.invoice_share)
    background = sorted(r.background_busy for r in results)
    noisy = sum(1 for b in background if b > QUIET)
    return {
        "load per run": (
            f"{load.messages['ordinary']} ordinary ({mail_sizes['ordinary']} bytes) over "
            f"{load.sessions['ordinary']} sessions + {load.invoices} invoices "
            f"({mail_sizes['invoice']} bytes) over {load.sessions['invoice']} sessions, "
            f"after {max(args.warmup, args.sessions)} untimed warm-up messages"
        ),
        "runs": f"{args.runs} per configuration, interleaved; medians, min-max over runs",
        "DNS": f"dnsmasq on loopback, every record with TTL {args.dns_ttl} s",
        "other load on the machine": (
            f"CPUs busy without the benchmark, 1 s before each run: median "
            f"{background[len(background) // 2]:.0%}, max {background[-1]:.0%}; "
            f"{noisy} of {len(background)} runs started above {QUIET:.0%}"
        ),
    }


def stop_on_signals() -> None:
    """Let SIGTERM and SIGINT unwind through the finally blocks that stop every Postfix,
    milter and smtp-sink of the run (a shell's background job even ignores SIGINT)."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)


def main(argv: list[str]) -> int:
    global profile_dir
    args = parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profile_dir = args.profile
    stop_on_signals()
    try:
        preflight(args.configs)
    except BenchFailure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="inboxpay-bench-", dir=args.workdir_base))
    workdir.chmod(0o755)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        results = benchmark(args, workdir)
    except (BenchFailure, RuntimeError, InboxPayError) as e:
        print(f"FAIL: {e}\n(work files kept in {workdir})", file=sys.stderr)
        return 1
    except SystemExit:
        # Interrupted: every process is stopped by now; the files are of no use.
        print("interrupted: every process of the benchmark stopped", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    sizes = {kind: (workdir / f"{kind}.eml").stat().st_size for kind in ("ordinary", "invoice")}
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    labels = {c: "bare Postfix" if c == "none" else MILTERS[c].label for c in CONFIGS}
    rows = report.summarise(results, labels)
    target = report.target_for(args.invoice_share)
    print("\n" + report.table(rows) + "\n\n" + "\n".join(report.target_lines(rows, target)))
    print("\n" + "\n".join(report.paired_lines(results, report.pairs_for(args.invoice_share))))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), "utf-8")
    if not args.no_docs:
        command = ".venv/bin/python bench/milter_throughput.py " + shlex.join(argv)
        facts = setup_facts(args, sizes, results)
        block = report.docs_block(rows, when, command.strip(), facts)
        report.write_docs(args.docs, block)
        print(f"\nwrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
