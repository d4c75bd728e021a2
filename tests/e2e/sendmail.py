"""A private Sendmail instance: Debian's own packages, unpacked, never installed.

Debian's sendmail and postfix packages conflict, so the e2e suite cannot have
both installed. ``unpacked_sendmail()`` fetches the sendmail packages with
``apt-get download`` into build/e2e-sendmail/ (gitignored, reused by later runs)
and unpacks them with ``dpkg-deb -x``; nothing is registered with dpkg and no
system file changes.

``PrivateSendmail`` generates a sendmail.cf with m4 and Debian's sendmail-cf
macros from an .mc that includes config/sendmail/inboxpay.mc with only its
socket replaced, then runs ``sendmail -bD`` (the daemon, in the foreground) on a
loopback port. Local recipients are handed to a tiny delivery program that
writes one Maildir per local part.

Sendmail sleeps 60 s at start-up when the host name is not fully qualified, and
looks up client addresses in the host's resolver; so it runs in its own UTS and
mount namespaces, with the host name set to the test MX and a private
/etc/hosts and nsswitch.conf bind-mounted for it alone.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import smtplib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .mail import Delivery, SmtpError, wait_for_delivery
from .milterproc import CardKeys
from .procs import accepts_tcp, process_exited, require_program, stop, tail, wait_until
from .world import DkimKey

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "config" / "sendmail" / "inboxpay.mc"
CACHE = REPO / "build" / "e2e-sendmail"
# sendmail-bin links libwrap, which Debian installs with the package but we do not.
PACKAGES = ("sendmail-bin", "sendmail-base", "sendmail-cf", "libwrap0")
# The socket the shipped snippet points at; the harness swaps in its own.
_SNIPPET_SOCKET = re.compile(r"S=inet:\d+@127\.0\.0\.1")
_ACCEPTED = re.compile(rb"^2\.0\.0 (\S+) Message accepted", re.IGNORECASE)

# Called by Sendmail's local mailer as: deliver.py MAILROOT LOCALPART, message on stdin.
_DELIVER = """\
import os, sys, time
root, user = sys.argv[1], sys.argv[2]
box = os.path.join(root, user)
for sub in ("tmp", "new", "cur"):
    os.makedirs(os.path.join(box, sub), exist_ok=True)
name = "%d.%d.sendmail" % (time.time_ns(), os.getpid())
data = sys.stdin.buffer.read()
# Maildir: write under tmp/, then rename into new/, so readers never see half a file.
with open(os.path.join(box, "tmp", name), "wb") as f:
    f.write(data)
os.rename(os.path.join(box, "tmp", name), os.path.join(box, "new", name))
"""


def snippet_with_socket(milter_socket: str, snippet: Path = SNIPPET) -> str:
    """The shipped snippet with only the milter socket replaced."""
    text = snippet.read_text("utf-8")
    replaced, count = _SNIPPET_SOCKET.subn(f"S={milter_socket}", text)
    if count != 1:
        raise RuntimeError(f"{snippet}: expected one 'S=inet:PORT@127.0.0.1' socket")
    return replaced


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two test sessions at once must not unpack into the same prefix together.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _run(cmd: Sequence[str], cwd: Path | None = None, hint: str = "") -> None:
    done = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}{hint}"
        )


def unpacked_sendmail(cache: Path = CACHE) -> Path:
    """The prefix where Debian's sendmail packages are unpacked, fetching them once."""
    prefix = cache / "prefix"
    debs = cache / "debs"
    with _locked(cache / ".lock"):
        marker = prefix / ".unpacked"
        if marker.exists():
            return prefix
        apt_get = require_program("apt-get", "run on Debian")
        dpkg_deb = require_program("dpkg-deb", "run on Debian")
        debs.mkdir(parents=True, exist_ok=True)
        missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
        if missing:
            # Runs as root: without this apt warns it cannot drop to _apt in our directory.
            _run(
                [apt_get, "download", "-q", "-o", "APT::Sandbox::User=root", *missing],
                cwd=debs,
                hint="\n(the package lists may be missing: apt-get update)",
            )
        staging = cache / "prefix.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)
        for deb in sorted(debs.glob("*.deb")):
            _run([dpkg_deb, "-x", str(deb), str(staging)])
        # Setgid in the package; a setgid program ignores LD_LIBRARY_PATH, which
        # is how this private copy finds the unpacked libwrap.
        binary = staging / "usr/libexec/sendmail/sendmail"
        binary.chmod(binary.stat().st_mode & 0o777 & ~0o2000)
        (staging / ".unpacked").write_text("\n".join(sorted(p.name for p in debs.glob("*.deb"))))
        staging.rename(prefix)
        return prefix


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def etc(self) -> Path:
        return self.root / "sendmail-etc"

    @property
    def queue(self) -> Path:
        return self.root / "sendmail-queue"

    @property
    def mail(self) -> Path:
        return self.root / "sendmail-mail"

    @property
    def output(self) -> Path:
        return self.root / "sendmail.out"


class PrivateSendmail:
    """``sendmail -bD -C PRIVATE.cf`` on 127.0.0.1:port; mail lands in Maildirs by local part."""

    def __init__(
        self,
        workdir: Path,
        smtp_port: int,
        milter_socket: str,
        hostname: str,
        local_domains: Sequence[str],
    ) -> None:
        self.paths = Layout(workdir)
        self.smtp_port = smtp_port
        self.milter_socket = milter_socket
        self.hostname = hostname
        self.local_domains = tuple(local_domains)
        self._proc: subprocess.Popen[bytes] | None = None

    def mc(self, prefix: Path) -> str:
        p = self.paths
        deliver = p.etc / "deliver.py"
        return f"""\
divert(-1)
dnl Generated by tests/e2e/sendmail.py for one test session.
divert(0)dnl
VERSIONID(`inboxpay e2e')dnl
OSTYPE(`linux')dnl
define(`MAIL_SETTINGS_DIR', `{p.etc}/')dnl
define(`confHELP_FILE', `{prefix}/etc/mail/helpfile')dnl
define(`QUEUE_DIR', `{p.queue}')dnl
define(`confPID_FILE', `{p.root}/sendmail.pid')dnl
define(`ALIAS_FILE', `{p.etc}/aliases')dnl
define(`confSERVICE_SWITCH_FILE', `{p.etc}/service.switch')dnl
define(`confDOMAIN_NAME', `{self.hostname}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confFORWARD_PATH', `')dnl
define(`confDELIVERY_MODE', `background')dnl
dnl Local delivery to our program, run as root (S), with Return-Path (P) and
dnl no UNIX From line (n); no passwd check, aliases or .forward files.
define(`_DEF_LOCAL_MAILER_FLAGS', `lsDFMq')dnl
FEATURE(`local_procmail', `{sys.executable}', `python {deliver} {p.mail} $u', `SPn')dnl
dnl The test senders' domains exist only in the milter's DNS, not in Sendmail's.
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`nocanonify')dnl
FEATURE(`no_default_msa')dnl
DAEMON_OPTIONS(`Port={self.smtp_port}, Addr=127.0.0.1, Name=MTA')dnl
LOCAL_DOMAIN(`{" ".join(self.local_domains)}')dnl
dnl --- config/sendmail/inboxpay.mc ---
{snippet_with_socket(self.milter_socket)}\
dnl ---
MAILER(`local')dnl
dnl Only so that check_mail accepts remote senders; no test mail leaves.
MAILER(`smtp')dnl
"""

    def write_config(self, prefix: Path) -> Path:
        p = self.paths
        for d in (p.etc, p.queue, p.mail):
            d.mkdir(parents=True, exist_ok=True)
        p.queue.chmod(0o700)
        (p.etc / "deliver.py").write_text(_DELIVER, "utf-8")
        (p.etc / "aliases").write_text("", "utf-8")
        # Sendmail's own lookups (its host map) stay off DNS.
        (p.etc / "service.switch").write_text("hosts files\naliases files\n", "ascii")
        (p.etc / "hosts").write_text(f"127.0.0.1\t{self.hostname} localhost\n", "ascii")
        # The same for libc's lookups in the Sendmail process (its host name, client PTRs).
        nsswitch = Path("/etc/nsswitch.conf").read_text("utf-8")
        nsswitch = re.sub(r"(?m)^hosts:.*$", "hosts: files", nsswitch)
        (p.etc / "nsswitch.conf").write_text(nsswitch, "utf-8")
        mc = p.etc / "sendmail.mc"
        mc.write_text(self.mc(prefix), "utf-8")
        cf_dir = prefix / "usr/share/sendmail/cf"
        m4 = require_program("m4", "apt-get install m4")
        done = subprocess.run(
            [m4, f"-D_CF_DIR_={cf_dir}/", str(cf_dir / "m4/cf.m4"), str(mc)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0 or done.stderr:
            raise RuntimeError(f"m4 on {mc}:\n{done.stderr.decode('utf-8', 'replace')}")
        cf = p.etc / "sendmail.cf"
        cf.write_bytes(done.stdout)
        return cf

    def command(self, prefix: Path, cf: Path) -> list[str]:
        p = self.paths
        # Namespaces for this process alone: host name and name lookups (see the module doc).
        script = (
            'hostname "$1" && mount --bind "$2" /etc/hosts && '
            'mount --bind "$3" /etc/nsswitch.conf && shift 3 && exec "$@"'
        )
        return [
            require_program("unshare", "apt-get install util-linux"),
            "--uts",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            self.hostname,
            str(p.etc / "hosts"),
            str(p.etc / "nsswitch.conf"),
            str(prefix / "usr/libexec/sendmail/sendmail"),
            "-C",
            str(cf),
            "-bD",
        ]

    def start(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("a private Sendmail needs root (namespaces, its daemon mode)")
        prefix = unpacked_sendmail()
        cf = self.write_config(prefix)
        env = {**os.environ, "LD_LIBRARY_PATH": str(prefix / "usr/lib/x86_64-linux-gnu")}
        with self.paths.output.open("wb") as out:
            self._proc = subprocess.Popen(
                self.command(prefix, cf), stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env
            )
        wait_until(
            lambda: accepts_tcp("127.0.0.1", self.smtp_port),
            timeout=30,
            what=f"sendmail on 127.0.0.1:{self.smtp_port}",
            alive=process_exited(self._proc, self.paths.output),
        )

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)
            self._proc = None

    def maildir(self, address: str) -> Path:
        return self.paths.mail / address.rsplit("@", 1)[0]

    def diagnostics(self) -> str:
        """What to show when a message never arrives: Sendmail has no log file here."""
        queued = sorted(f.name for f in self.paths.queue.iterdir())
        return f"queue {self.paths.queue}: {queued}\nsendmail output:\n{tail(self.paths.output)}"


@dataclass(frozen=True)
class SendmailClient:
    """Sendmail has no XCLIENT: the client address is the socket's, a loopback address."""

    addr: str  # 127.x.y.z, bound as the connection's source address
    helo: str


def send(
    port: int, client: SendmailClient, mail_from: str, rcpt_to: Sequence[str], message: bytes
) -> str:
    """Submit ``message`` exactly as given and return Sendmail's queue id."""
    with smtplib.SMTP(
        "127.0.0.1", port, local_hostname=client.helo, timeout=90, source_address=(client.addr, 0)
    ) as smtp:
        code, reply = smtp.ehlo()
        if code != 250:
            raise SmtpError(f"EHLO: {code} {reply!r}")
        code, reply = smtp.mail(mail_from)
        if code != 250:
            raise SmtpError(f"MAIL FROM:<{mail_from}>: {code} {reply!r}")
        for rcpt in rcpt_to:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise SmtpError(f"RCPT TO:<{rcpt}>: {code} {reply!r}")
        code, reply = smtp.data(message)
        if code != 250:
            raise SmtpError(f"DATA: {code} {reply!r}")
    found = _ACCEPTED.match(reply)
    if found is None:
        raise SmtpError(f"DATA reply has no queue id: {reply!r}")
    return found.group(1).decode("ascii")


@dataclass(frozen=True)
class SendmailMta:
    sendmail: PrivateSendmail
    card_keys: CardKeys
    dkim: dict[str, DkimKey]

    def deliver_one(
        self, message: bytes, client: SendmailClient, mail_from: str, rcpt: str
    ) -> Delivery:
        queue_id = send(self.sendmail.smtp_port, client, mail_from, [rcpt], message)
        try:
            raw = wait_for_delivery(self.sendmail.maildir(rcpt), queue_id)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.sendmail.diagnostics()}") from None
        return Delivery(queue_id, rcpt, raw)
