"""The milters under comparison, each as a process with a private config and socket.

The e2e harness's MilterProcess starts only the InboxPay milter (or its stand-in)
on an inet port; here every milter can listen on a unix socket or an inet port,
so each kind writes its own config and command, and one runner starts them all.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from bench.null_milter import EOM_LINE
from bench.null_milter import HEADER as NULL_HEADER
from bench.traffic import PARTNERS_TOML
from inboxpay.card import keys
from tests.e2e.procs import accepts_tcp, free_port, process_exited, stop, tail, wait_until

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
NULL_MILTER = BENCH / "null_milter.py"
DKIMPY_LAUNCH = BENCH / "dkimpy_launch.py"
# Where bench/setup.sh puts dkimpy-milter, away from the project venv.
DKIMPY_VENV = Path(os.environ.get("INBOXPAY_BENCH_DKIMPY_VENV", "/tmp/inboxpay-venv-dkimpy"))
# A host no test mail comes from: OpenDKIM and dkimpy-milter treat 127.0.0.1 as
# internal by default and would sign or skip instead of verifying.
NOT_OUR_CLIENT = "192.0.2.254"
TRANSPORTS = ("unix", "inet")


@dataclass(frozen=True)
class Socket:
    transport: str
    path: Path | None = None
    port: int = 0

    def libmilter(self) -> str:
        """The spec a libmilter program listens on."""
        if self.path is not None:
            return f"unix:{self.path}"
        return f"inet:{self.port}@127.0.0.1"

    def postfix(self) -> str:
        """The same socket as Postfix's smtpd_milters spells it."""
        if self.path is not None:
            return f"unix:{self.path}"
        return f"inet:127.0.0.1:{self.port}"

    def accepts(self) -> bool:
        if self.path is None:
            return accepts_tcp("127.0.0.1", self.port)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(self.path))
            except OSError:
                return False
        return True


def new_socket(transport: str, run_dir: Path) -> Socket:
    if transport == "unix":
        sock_dir = run_dir / "sock"
        sock_dir.mkdir(mode=0o755)
        return Socket("unix", path=sock_dir / "milter.sock")
    if transport == "inet":
        return Socket("inet", port=free_port())
    raise ValueError(f"unknown transport {transport!r}")


@dataclass(frozen=True)
class Shared:
    """What every run's milter may need, made once per benchmark."""

    workdir: Path
    dns_port: int
    authserv_id: str


@dataclass(frozen=True)
class Expected:
    """What a run must show: messages the milter saw and invoices among them."""

    messages: int
    invoices: int


@dataclass(frozen=True)
class DumpCounts:
    """What smtp-sink received, counted in its dump file."""

    messages: int
    cards: int
    dkim_pass: int
    null_headers: int


def count_dump(path: Path) -> DumpCounts:
    data = path.read_bytes() if path.exists() else b""
    return DumpCounts(
        # smtp-sink writes exactly one X-Mail-Args record per transaction.
        messages=data.count(b"\nX-Mail-Args: ") + data.startswith(b"X-Mail-Args: "),
        cards=data.count(b"\nInboxPay-Card:"),
        dkim_pass=data.count(b"dkim=pass"),
        null_headers=data.count(f"\n{NULL_HEADER}:".encode("ascii")),
    )


class BenchMilter(ABC):
    name: str
    label: str

    @abstractmethod
    def command(self, run_dir: Path, sock: Socket, shared: Shared) -> list[str]:
        """Write any config into ``run_dir`` and return the command that runs the milter."""

    @abstractmethod
    def problems(self, log: str, dump: DumpCounts, expected: Expected) -> list[str]:
        """Why this run does not prove the milter did its work (empty when it did)."""

    def available(self) -> str | None:
        """Why this milter cannot run here (None when it can)."""
        return None


def _dkim_pass_problems(label: str, dump: DumpCounts, expected: Expected) -> list[str]:
    if dump.dkim_pass != expected.messages:
        return [
            f"{label}: {dump.dkim_pass} 'dkim=pass' results reached smtp-sink, "
            f"expected {expected.messages}: it did not verify every message"
        ]
    return []


class NullMilter(BenchMilter):
    name = "null"
    label = "null pymilter"
    add_header = False

    def command(self, run_dir: Path, sock: Socket, shared: Shared) -> list[str]:
        extra = ["--add-header"] if self.add_header else []
        return [sys.executable, str(NULL_MILTER), sock.libmilter(), *extra]

    def problems(self, log: str, dump: DumpCounts, expected: Expected) -> list[str]:
        lines = [line for line in log.splitlines() if line.startswith(EOM_LINE)]
        if not lines:
            return [f"{self.label} printed no '{EOM_LINE}N' line at exit"]
        seen = int(lines[-1][len(EOM_LINE) :])
        if seen != expected.messages:
            return [f"{self.label} saw {seen} messages, expected {expected.messages}"]
        headers = dump.null_headers if self.add_header else 0
        if headers != (expected.messages if self.add_header else 0):
            return [f"{headers} {NULL_HEADER} headers reached smtp-sink"]
        return []


class NullHeaderMilter(NullMilter):
    name = "nullhdr"
    label = "null pymilter + 1 header"
    add_header = True


class InboxPayMilter(BenchMilter):
    name = "inboxpay"
    label = "InboxPay"
    authentication_results = "payment"  # the default: only mail that could earn a card
    workers = 0  # the default: one per CPU

    def command(self, run_dir: Path, sock: Socket, shared: Shared) -> list[str]:
        config = run_dir / "inboxpay.toml"
        config.write_text(self.config(sock, shared), "utf-8")
        return [sys.executable, "-m", "inboxpay", "milter", "--config", str(config)]

    @staticmethod
    def signing_keys(shared: Shared) -> tuple[Path, Path]:
        key_dir = shared.workdir / "inboxpay-keys"
        signing, recipient = key_dir / "card-signing.pem", key_dir / "recipient.key"
        if not signing.exists():
            keys.generate_signing_key(signing)
            keys.generate_recipient_key(recipient)
        return signing, recipient

    def config(self, sock: Socket, shared: Shared) -> str:
        signing, recipient = self.signing_keys(shared)
        return f"""\
[milter]
socket = "{sock.libmilter()}"
authserv_id = "{shared.authserv_id}"
# smtp-source connects from 127.0.0.1: it must be checked like mail from the Internet.
internal_networks = []
authentication_results = "{self.authentication_results}"
workers = {self.workers}

[dns]
nameservers = ["127.0.0.1"]
port = {shared.dns_port}
timeout = 2.0

[signing]
key_file = "{signing}"
recipient_key_file = "{recipient}"

{PARTNERS_TOML}"""

    def problems(self, log: str, dump: DumpCounts, expected: Expected) -> list[str]:
        processed = log.count('"msg": "message processed"')
        cards = log.count('"verdict": "card"')
        found = []
        if processed != expected.messages:
            found.append(
                f"InboxPay logged {processed} messages processed, expected {expected.messages}"
            )
        if cards != expected.invoices:
            found.append(f"InboxPay logged {cards} card verdicts, expected {expected.invoices}")
        if dump.cards != expected.invoices:
            found.append(
                f"{dump.cards} InboxPay-Card headers reached smtp-sink, "
                f"expected {expected.invoices}"
            )
        if "analysis failed" in log:
            found.append("InboxPay logged 'analysis failed'")
        if self.authentication_results == "payment":
            # Only the invoices are authenticated: each must carry our dkim=pass.
            partner = Expected(expected.invoices, expected.invoices)
            return found + _dkim_pass_problems(self.label, dump, partner)
        return found + _dkim_pass_problems(self.label, dump, expected)


class InboxPayAll(InboxPayMilter):
    name = "inboxpay-all"
    label = "InboxPay, authentication_results = all"
    authentication_results = "all"


class InboxPayOneWorker(InboxPayMilter):
    name = "inboxpay-1w"
    label = "InboxPay, workers = 1"
    workers = 1


class OpenDkim(BenchMilter):
    name = "opendkim"
    label = "OpenDKIM verify-only"

    def available(self) -> str | None:
        return None if Path("/usr/sbin/opendkim").exists() else "opendkim missing: bench/setup.sh"

    def command(self, run_dir: Path, sock: Socket, shared: Shared) -> list[str]:
        config = run_dir / "opendkim.conf"
        config.write_text(self.config(sock, shared), "ascii")
        return ["/usr/sbin/opendkim", "-f", "-x", str(config)]

    @staticmethod
    def config(sock: Socket, shared: Shared) -> str:
        # OpenDKIM wants a literal address in brackets.
        spec = f"local:{sock.path}" if sock.path else f"inet:{sock.port}@[127.0.0.1]"
        # Debian's OpenDKIM resolves with libunbound, which takes "address@port" as a
        # forwarder, so the bench DNS need not be on port 53. (ResolverConfiguration
        # with an unbound.conf also works, but 2.11.0 re-reads that file per message
        # without a lock and dies with "fatal flex scanner internal error" under load.)
        return f"""\
Mode v
Socket {spec}
Syslog no
AuthservID {shared.authserv_id}
InternalHosts {NOT_OUR_CLIENT}
Nameservers 127.0.0.1@{shared.dns_port}
"""

    def problems(self, log: str, dump: DumpCounts, expected: Expected) -> list[str]:
        return _dkim_pass_problems(self.label, dump, expected)


class DkimpyMilter(BenchMilter):
    name = "dkimpy"
    label = "dkimpy-milter verify-only"

    @staticmethod
    def python() -> Path:
        return DKIMPY_VENV / "bin" / "python"

    def available(self) -> str | None:
        if self.python().exists() and (DKIMPY_VENV / "bin" / "dkimpy-milter").exists():
            return None
        return f"dkimpy-milter missing in {DKIMPY_VENV}: bench/setup.sh"

    def command(self, run_dir: Path, sock: Socket, shared: Shared) -> list[str]:
        config = run_dir / "dkimpy-milter.conf"
        # UserID root: it must keep reading its Python, which may live under /root
        # (pyenv); after dropping to "nobody" it fails with "unknown encoding: ascii".
        spec = f"local:{sock.path}" if sock.path else sock.libmilter()
        config.write_text(
            f"""\
Mode v
Socket {spec}
Syslog no
UserID root
AuthservID {shared.authserv_id}
InternalHosts {NOT_OUR_CLIENT}
""",
            "ascii",
        )
        return [str(self.python()), str(DKIMPY_LAUNCH), str(shared.dns_port), str(config)]

    def problems(self, log: str, dump: DumpCounts, expected: Expected) -> list[str]:
        return _dkim_pass_problems(self.label, dump, expected)


MILTERS: dict[str, BenchMilter] = {
    m.name: m
    for m in (
        NullMilter(),
        NullHeaderMilter(),
        InboxPayMilter(),
        InboxPayAll(),
        InboxPayOneWorker(),
        OpenDkim(),
        DkimpyMilter(),
    )
}


class MilterProcess:
    """One milter for one run: started, made reachable by Postfix, measured, stopped."""

    def __init__(self, milter: BenchMilter, run_dir: Path, transport: str, shared: Shared) -> None:
        self.milter = milter
        self.run_dir = run_dir
        self.socket = new_socket(transport, run_dir)
        self.log = run_dir / f"{milter.name}.log"
        self._command = milter.command(run_dir, self.socket, shared)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                self._command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=REPO
            )
        wait_until(
            self.socket.accepts,
            timeout=30,
            what=f"{self.milter.label} on {self.socket.libmilter()}",
            alive=process_exited(self._proc, self.log),
        )
        if self.socket.path is not None:
            # Milters create the socket with their own owner and umask; Postfix's
            # smtpd runs as "postfix" and needs write permission to connect. Without
            # this Postfix would skip the milter (milter_default_action = accept).
            self.socket.path.chmod(0o666)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("milter not started")
        return self._proc.pid

    def processes(self) -> list[int]:
        """The milter's process and its children (InboxPay's workers)."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text("ascii")
        except OSError:
            return [self.pid]
        return [self.pid, *(int(c) for c in children.split())]

    def peak_rss_kib(self) -> int | None:
        """VmHWM, the most resident memory each process ever had, summed over the milter's
        processes: at least their peak together (shared pages counted in each)."""
        total = 0
        for pid in self.processes():
            try:
                status = Path(f"/proc/{pid}/status").read_text("ascii")
            except OSError:
                return None
            total += next(
                (int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM:")), 0
            )
        return total or None

    def cpu_seconds(self) -> float:
        """User + system CPU the milter used so far, all threads and processes together."""
        total = 0
        for pid in self.processes():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text("ascii")
            except OSError:
                continue  # a worker that just ended: its time is in the parent's cutime
            # Fields after the command name, which is in parentheses and may hold spaces.
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
            if pid == self.pid:
                total += int(fields[13]) + int(fields[14])  # children it has reaped
        return total / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(
                f"{self.milter.label} exited ({self._proc.returncode}) during the run; "
                f"log {self.log}:\n{tail(self.log)}"
            )

    def stop(self) -> str:
        """Stop the milter and return its whole log (some milters report at exit)."""
        if self._proc is not None:
            stop(self._proc, grace=10)
        return self.log.read_text("utf-8", errors="replace")
