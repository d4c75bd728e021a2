"""DEVELOPMENT ONLY: a private Postfix instance with the milter attached.

``inboxpay dev-mta --config FILE`` runs one for ``make run``, so that a newcomer's first
``inboxpay send-sample`` goes through a real MTA and the milter and lands in the demo
inbox; the end-to-end tests run theirs with the same class.

- Postfix's config directory, queue, data directory and log live under one folder
  (:class:`Layout`); the recipients' Maildirs wherever the caller says (``inboxpay
  dev-mta``: ``mail/<address>/`` next to the config, the ``[sidecar] demo_maildir``
  that ``inboxpay init`` writes).
- smtpd listens on one loopback port and trusts XCLIENT from loopback, so tests can
  present any client (and so SPF any address) without leaving 127.0.0.1.
- The milter is attached with the lines of the Postfix snippet the package ships
  (``inboxpay/data/postfix/main.cf.snippet``, :data:`SNIPPET`), only its socket
  replaced: what the tests and the developer run is what the docs tell administrators
  to paste.
- Only the configured addresses are accepted, each delivered to its Maildir by
  virtual(8) as an unprivileged uid; nothing is ever relayed or sent out.

Nothing touches the system's Postfix: every command runs with ``-c`` on the private
config directory. Starting Postfix needs root (its master switches users).
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import FrameType
from typing import TextIO

from inboxpay.dev import DEFAULT_MTA_LISTEN
from inboxpay.errors import InboxPayError

#: The Postfix snippet administrators paste, shipped as package data (so dev-mta works
#: from an installed wheel as from a clone).
SNIPPET: Traversable = resources.files("inboxpay").joinpath("data", "postfix", "main.cf.snippet")
DEFAULT_LISTEN = DEFAULT_MTA_LISTEN
#: Where ``inboxpay dev-mta`` puts Postfix and the Maildirs, relative to the config's folder.
POSTFIX_FOLDER = "postfix"
MAIL_FOLDER = "mail"
#: virtual(8) delivers as this uid/gid (nobody/nogroup on Debian) unless an ordinary
#: user owns the config folder; never root, which virtual(8) refuses anyway.
NOBODY = 65534
_VIRTUAL_MINIMUM_UID = 100

_SNIPPET_SOCKET = re.compile(r"^(smtpd_milters[ \t]*=[ \t]*)\S+[ \t]*$", re.MULTILINE)
# Any warning that names a milter: with milter_default_action = accept this is the
# only trace left when Postfix skips the milter.
_MILTER_WARNING = re.compile(r"warning:.*milter", re.IGNORECASE)
# What can go into an inline: table unquoted (no space, comma, brace or "=").
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_MAP_PATH = re.compile(r"[A-Za-z0-9._%+@/-]+")
_LIBMILTER_INET = re.compile(r"(inet6?):(\d{1,5})(?:@(\S+))?")
# Log lines worth showing a developer as they happen.
_NEWSWORTHY = re.compile(r"status=|warning:|error:|fatal:|panic:|milter-reject")

_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{port}    inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class DevMtaError(InboxPayError):
    """The development MTA cannot be configured or started."""


def postfix_milter_socket(spec: str) -> str:
    """A libmilter socket spec (``[milter] socket``) as Postfix names the same socket."""
    if spec.startswith(("unix:", "local:")):
        return "unix:" + spec.split(":", 1)[1]
    if spec.startswith("/"):
        return "unix:" + spec
    found = _LIBMILTER_INET.fullmatch(spec)
    if found is None:
        raise DevMtaError(f"not a libmilter socket spec: {spec!r}")
    family, port, host = found.groups()
    if family == "inet6":
        return f"inet:[{(host or '::1').strip('[]')}]:{port}"
    # A milter on every address (no @HOST) is reached on loopback.
    return f"inet:{host or '127.0.0.1'}:{port}"


def milter_snippet(milter: str, snippet: Traversable = SNIPPET) -> str:
    """The shipped snippet with only the ``smtpd_milters`` socket replaced by ``milter``."""
    try:
        text = snippet.read_text("utf-8")
    except OSError as e:
        raise DevMtaError(
            f"{snippet}: {e.strerror}; it ships with the package: reinstall InboxPay"
        ) from None
    replaced, count = _SNIPPET_SOCKET.subn(lambda m: m.group(1) + milter, text)
    if count != 1:
        raise DevMtaError(f"{snippet}: expected exactly one 'smtpd_milters = SOCKET' line")
    return replaced


def milter_warnings(log_text: str) -> list[str]:
    """The log lines that say Postfix skipped (or could not talk to) a milter."""
    return [line for line in log_text.splitlines() if _MILTER_WARNING.search(line)]


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` for smtpd: an IPv4 loopback address only, this MTA is for one machine."""
    host, _, port = text.rpartition(":")
    try:
        loopback = ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback or not port.isdigit() or not 0 < int(port) < 65536:
        raise DevMtaError(f"listen address must be 127.x.y.z:PORT, got {text!r}")
    return host, int(port)


def mail_owner(folder: Path) -> tuple[int, int]:
    """Who virtual(8) delivers as: the folder's owner when an ordinary user, else nobody."""
    info = folder.stat()
    if info.st_uid >= _VIRTUAL_MINIMUM_UID:
        return info.st_uid, info.st_gid
    return NOBODY, NOBODY


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e.strerror}>"
    return "\n".join(text.splitlines()[-lines:])


def _make_dirs(path: Path, mode: int = 0o755) -> None:
    """``mkdir -p`` that sets ``mode`` on each folder it creates, whatever the umask:
    Postfix's users and the delivery uid must be able to walk through them."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir()
        folder.chmod(mode)


def _blocked_ancestor(path: Path) -> Path | None:
    """The first folder above ``path`` that other users cannot walk through, if any."""
    for folder in reversed(path.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


@dataclass(frozen=True)
class Layout:
    """Postfix's own files, all under ``root``."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postfix.log"


class DevMta:
    """A private Postfix on ``host:smtp_port`` delivering ``mailboxes`` (address -> Maildir).

    ``start()`` writes the config and runs ``postfix -c CONFIG start``; ``stop()`` stops it.
    ``milter`` is the socket as Postfix names it (``inet:127.0.0.1:8894``,
    ``unix:/run/inboxpay/milter.sock``; :func:`postfix_milter_socket` converts a
    ``[milter] socket``).
    """

    def __init__(
        self,
        root: Path,
        *,
        listen: str,
        milter: str,
        hostname: str,
        mailboxes: Mapping[str, Path],
        owner: tuple[int, int] = (NOBODY, NOBODY),
        snippet: Traversable = SNIPPET,
        purpose: str = "development",
    ) -> None:
        self.paths = Layout(root)
        self.host, self.smtp_port = parse_listen(listen)
        self.milter = milter
        self.hostname = hostname
        if not mailboxes:
            raise DevMtaError("at least one recipient address is needed")
        for address, maildir in mailboxes.items():
            if not _ADDRESS.fullmatch(address):
                raise DevMtaError(f"not a deliverable address: {address!r}")
            if not maildir.is_absolute():
                raise DevMtaError(f"{address}: the Maildir path must be absolute: {maildir}")
        self.mailboxes = {a.lower(): m for a, m in mailboxes.items()}
        self.owner = owner
        if owner[0] < _VIRTUAL_MINIMUM_UID:
            raise DevMtaError(f"virtual(8) will not deliver as uid {owner[0]} (minimum 100)")
        self.snippet = snippet
        self.purpose = purpose
        self._started = False

    # --- the configuration ---

    @property
    def mail_base(self) -> Path:
        """virtual_mailbox_base: the deepest folder holding every Maildir."""
        return Path(os.path.commonpath([str(m.parent) for m in self.mailboxes.values()]))

    def recipient_domains(self) -> list[str]:
        return sorted({address.rsplit("@", 1)[1] for address in self.mailboxes})

    def mailbox_map(self) -> str:
        # address -> path/ under the base; the trailing slash asks for a Maildir. A
        # regexp: table cannot do this: virtual(8) refuses $n substitution here.
        entries = []
        for address, maildir in sorted(self.mailboxes.items()):
            rel = maildir.relative_to(self.mail_base).as_posix()
            if not _MAP_PATH.fullmatch(rel):
                raise DevMtaError(f"{maildir}: Postfix cannot name this Maildir in a table")
            entries.append(f"{address}={rel}/")
        return ", ".join(entries)

    def main_cf(self, mail_uid: int, mail_gid: int) -> str:
        p = self.paths
        outbound = f"error:outbound mail is disabled ({self.purpose} MTA)"
        base = f"""\
# Generated by inboxpay/dev/mta.py: a private Postfix for {self.purpose}, never the system's.
compatibility_level = 3.6
queue_directory = {p.queue}
data_directory = {p.data}
myhostname = {self.hostname}
mydomain = localdomain
myorigin = $myhostname
mydestination =
inet_interfaces = {self.host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# A private instance exits silently with status 1 if the log is outside these prefixes.
maillog_file = {p.log}
maillog_file_prefixes = {p.root}
smtpd_authorized_xclient_hosts = 127.0.0.0/8
# XCLIENT supplies the client name; never ask the system resolver about 127.0.0.1.
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_auth_destination, reject
smtpd_recipient_restrictions =
virtual_mailbox_domains = {", ".join(self.recipient_domains())}
virtual_mailbox_base = {self.mail_base}
virtual_mailbox_maps = inline:{{ {self.mailbox_map()} }}
virtual_uid_maps = static:{mail_uid}
virtual_gid_maps = static:{mail_gid}
# No mail ever leaves: bounces and anything else non-local die here, not in DNS.
default_transport = {outbound}
relay_transport = {outbound}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
message_size_limit = 10240000
"""
        return (
            base
            + "\n# --- inboxpay/data/postfix/main.cf.snippet ---\n"
            + milter_snippet(self.milter, self.snippet)
        )

    def master_cf(self) -> str:
        return _MASTER_CF.format(port=self.smtp_port)

    def write_config(self) -> None:
        p = self.paths
        uid, gid = self.owner
        for folder in (p.config, p.queue, p.data):
            _make_dirs(folder)
        # Postfix daemons write their data_directory as mail_owner.
        try:
            postfix = pwd.getpwnam("postfix")
        except KeyError:
            raise DevMtaError("no 'postfix' user: apt-get install postfix") from None
        os.chown(p.data, postfix.pw_uid, postfix.pw_gid)
        # Each Maildir exists before the first message, owned by the delivery uid, so
        # virtual(8) never has to create (or be allowed to create) anything above it.
        for maildir in self.mailboxes.values():
            _make_dirs(maildir.parent)
            for folder in (maildir, maildir / "tmp", maildir / "new", maildir / "cur"):
                _make_dirs(folder, 0o700)
                os.chown(folder, uid, gid)
        for folder in (p.root, *self.mailboxes.values()):
            blocked = _blocked_ancestor(folder)
            if blocked is not None:
                raise DevMtaError(
                    f"{blocked} is closed to other users (mode "
                    f"{stat.S_IMODE(blocked.stat().st_mode):o}), so Postfix's daemons and "
                    f"the delivery uid cannot reach {folder}: use a folder outside it, or "
                    f"chmod o+x {blocked}"
                )
        (p.config / "main.cf").write_text(self.main_cf(uid, gid), "utf-8")
        (p.config / "master.cf").write_text(self.master_cf(), "utf-8")

    # --- running ---

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        binary = shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin:/sbin")
        if binary is None:
            raise DevMtaError("postfix not found: apt-get install postfix")
        cmd = [binary, "-c", str(self.paths.config), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    def _run(self, *args: str) -> None:
        done = self._postfix(*args)
        if done.returncode != 0:
            raise DevMtaError(
                f"postfix -c {self.paths.config} {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}\nlog {self.paths.log}:\n{_tail(self.paths.log)}"
            )

    def running(self) -> bool:
        """Whether this instance's master runs (one left over from an earlier run, say)."""
        return self.paths.config.joinpath("main.cf").exists() and self.master_alive()

    def master_alive(self) -> bool:
        """Whether the master named in the queue's pid file still runs. An exited master
        may linger as a zombie (a container's init need not reap it): that is not alive."""
        try:
            pid = int((self.paths.queue / "pid" / "master.pid").read_text("ascii").strip())
            stat_line = Path(f"/proc/{pid}/stat").read_text("ascii")
        except (OSError, ValueError):
            return False
        # "PID (COMM) STATE ...": COMM may hold spaces or parentheses, so split at the last ")".
        comm = stat_line[stat_line.find("(") + 1 : stat_line.rfind(")")]
        state = stat_line[stat_line.rfind(")") + 2 :][:1]
        return comm == "master" and state not in ("Z", "X")

    def start(self, timeout: float = 15.0) -> None:
        if os.geteuid() != 0:
            raise DevMtaError(
                "a private Postfix needs root (its master switches users, and the Maildirs "
                "are handed to the delivery uid): run it with sudo"
            )
        self.stop_leftover()
        if not _port_free(self.host, self.smtp_port):
            raise DevMtaError(f"{self.host}:{self.smtp_port} is already in use")
        self.write_config()
        # "start" runs "check", which creates the queue subdirectories; we do not run
        # set-permissions, as it also re-owns the system's Postfix programs.
        self._run("start")
        self._started = True
        deadline = time.monotonic() + timeout
        while not _accepts_tcp(self.host, self.smtp_port):
            if time.monotonic() > deadline:
                self.stop()
                raise DevMtaError(
                    f"Postfix smtpd not listening on {self.host}:{self.smtp_port} after "
                    f"{timeout:.0f} s; log {self.paths.log}:\n{_tail(self.paths.log)}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self._started:
            self._started = False
            if self.master_alive():  # it may have been stopped (or died) without us
                self._run("stop")

    def stop_leftover(self) -> None:
        """Stop this config's Postfix if it runs without us (its dev-mta was killed)."""
        if not self._started and self.running():
            self._run("stop")

    # --- what happened ---

    def log_size(self) -> int:
        try:
            return self.paths.log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_bytes_since(self, offset: int) -> bytes:
        try:
            with self.paths.log.open("rb") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return b""

    def log_since(self, offset: int) -> str:
        return self.log_bytes_since(offset).decode("utf-8", errors="replace")

    def maildir(self, address: str) -> Path:
        return self.mailboxes[address.lower()]


def for_config(
    folder: Path,
    milter_socket: str,
    hostname: str,
    demo_user: str,
    demo_maildir: Path | None,
    listen: str = DEFAULT_LISTEN,
    extra: Sequence[str] = (),
) -> DevMta:
    """The development MTA of the config in ``folder``: ``demo_user``'s mail to the demo
    inbox (``demo_maildir``, else ``mail/<demo_user>/``), ``extra`` to ``mail/<address>/``."""
    mail = folder / MAIL_FOLDER
    mailboxes = {demo_user.lower(): demo_maildir or mail / demo_user.lower()}
    for address in extra:
        mailboxes.setdefault(address.lower(), mail / address.lower())
    return DevMta(
        folder / POSTFIX_FOLDER,
        listen=listen,
        milter=postfix_milter_socket(milter_socket),
        hostname=hostname,
        mailboxes=mailboxes,
        owner=mail_owner(folder),
    )


def serve(mta: DevMta, out: TextIO, poll: float = 0.5) -> None:
    """Run until SIGINT or SIGTERM, echoing deliveries and warnings from the log; then stop.

    Raises :class:`DevMtaError` when Postfix's master goes away by itself.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    offset = mta.log_size()
    hinted = False
    try:
        while not stopping.wait(poll):
            data = mta.log_bytes_since(offset)
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
            offset += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                if _NEWSWORTHY.search(line):
                    print(f"dev-mta: {line}", file=out, flush=True)
                if not hinted and milter_warnings(line):
                    hinted = True
                    print(
                        f"dev-mta: mail passes WITHOUT a card while Postfix cannot reach the "
                        f"milter at {mta.milter}: is `inboxpay milter` running?",
                        file=out,
                        flush=True,
                    )
            if not mta.master_alive():
                raise DevMtaError(
                    f"Postfix's master exited; log {mta.paths.log}:\n{_tail(mta.paths.log)}"
                )
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        mta.stop()
