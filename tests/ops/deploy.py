"""An InboxPay installation in a temporary root, made the way docs/operations.md says.

``install()`` runs the real tools with ``--root`` (systemd-sysusers,
systemd-tmpfiles), so nothing outside the temporary root changes: the user
``inboxpay`` exists only in ROOT/etc/passwd, and processes run with its uid number.

The service command is a virtualenv at ROOT/opt/inboxpay made from Debian's
/usr/bin/python3, linked from ROOT/usr/local/bin/inboxpay, as on a real host. Its
packages are the project's own virtualenv's (a .pth file), so nothing is
downloaded; the project's interpreter is not used because it may live under
/root, which the service user cannot enter (and ProtectHome= would hide).
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from inboxpay import config as config_module
from inboxpay.dev.init import init

from . import units
from .confine import Spec

SYSTEM_PYTHON = Path("/usr/bin/python3")
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
SOCKET_DIR = "/var/spool/postfix/inboxpay"
STATE_DIR = "/var/lib/inboxpay"

# A partner whose mail the e2e DNS world can authenticate (tests/e2e/world.py).
TEST_PARTNER = """
[[partners]]
id = "xerotest"
name = "Xero (test)"
sender_domains = ["post.xero.test"]
invoice_url_hosts = ["in.xero.test"]
"""

_FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10}


def require(program: str, hint: str) -> str:
    """The path of a tool the test cannot do without; fail, never skip, when it is missing."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(f"{program} not found: {hint}", pytrace=False)
    return path


def run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def account(root: Path, name: str) -> Account:
    """A user as ROOT/etc/passwd has it (not the host's)."""
    for line in (root / "etc/passwd").read_text("utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return Account(name, int(fields[2]), int(fields[3]))
    raise AssertionError(f"no user {name} in {root}/etc/passwd")


@dataclass(frozen=True)
class Deployment:
    root: Path
    user: Account
    postfix_gid: int
    ports: dict[str, int]

    @property
    def config(self) -> Path:
        return self.root / "etc/inboxpay/inboxpay.toml"

    @property
    def unit_dir(self) -> Path:
        return self.root / "etc/systemd/system"

    def unit(self, name: str) -> units.Unit:
        """The rendered unit with its installed drop-ins applied."""
        dropin_dir = self.unit_dir / f"{name}.d"
        dropins = sorted(dropin_dir.glob("*.conf")) if dropin_dir.is_dir() else []
        return units.merged(units.parse(self.unit_dir / name), *map(units.parse, dropins))

    @property
    def socket(self) -> Path:
        return self.root / SOCKET_DIR.lstrip("/") / "milter.sock"

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR.lstrip("/")


def _service_python(root: Path) -> Path:
    """ROOT/opt/inboxpay: a virtualenv on Debian's python3 that sees the project's packages."""
    require("python3", "apt-get install python3")
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} not found: apt-get install python3", pytrace=False)
    version = run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"]).stdout
    if version.strip() != str(sys.version_info[:2]):
        pytest.fail(
            f"{SYSTEM_PYTHON} is {version.strip()}, the project's virtualenv "
            f"{sys.version_info[:2]}: their compiled packages are not interchangeable",
            pytrace=False,
        )
    venv = root / "opt/inboxpay"
    run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)])
    site = Path(
        run(
            [
                str(venv / "bin/python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ]
        ).stdout.strip()
    )
    # addsitedir also runs the .pth files there, among them the editable install's finder.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "inboxpay-project.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in sorted(ours)), "utf-8"
    )
    script = venv / "bin/inboxpay"
    script.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom inboxpay.cli import main\nsys.exit(main())\n",
        "utf-8",
    )
    script.chmod(0o755)
    return script


def production_config(text: str, root: Path, dns_port: int) -> str:
    """``inboxpay init``'s development config with the production edits operations.md lists,
    every path moved under ``root``."""
    socket = f"unix:{root}{SOCKET_DIR}/milter.sock"
    edits: list[tuple[str, str]] = [
        (r'(?m)^socket = "inet:[^"]*"', f'socket = "{socket}"'),
        (
            r'(?m)^url = "sqlite:///inboxpay\.db"',
            f'url = "sqlite:///{root}{STATE_DIR}/inboxpay.db"',
        ),
        (r'(?m)^ledger = "sandbox-ledger\.db"', f'ledger = "{root}{STATE_DIR}/sandbox-ledger.db"'),
        # The test world's resolver, not the host's (the one [dns] port line).
        (r"(?m)^port = 53$", f"port = {dns_port}"),
        # Production runs without the development demo inbox.
        (r"(?m)^demo_maildir = .*\n", ""),
        (r"(?m)^demo_user = .*\n", ""),
    ]
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"inboxpay init's config changed: {pattern!r} matched {count} times"
    return text + TEST_PARTNER


def install(root: Path, dns_port: int, ports: dict[str, int], authserv_id: str) -> Deployment:
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        require(tool, "apt-get install systemd")
    (root / "etc").mkdir(parents=True)
    # As if Debian's postfix package were installed: its group owns the socket directory.
    try:
        postfix = grp.getgrnam("postfix")
    except KeyError:
        pytest.fail("no postfix group: apt-get install postfix", pytrace=False)
    (root / "etc/group").write_text(f"postfix:x:{postfix.gr_gid}:\n", "utf-8")
    run(["systemd-sysusers", f"--root={root}", str(units.SYSTEMD / units.SYSUSERS)])
    tmpfiles = ["systemd-tmpfiles", f"--root={root}", "--create"]
    tmpfiles += [str(units.SYSTEMD / name) for name in units.TMPFILES]
    run(tmpfiles)

    binary = root / "usr/local/bin/inboxpay"
    binary.parent.mkdir(parents=True)
    binary.symlink_to(_service_python(root))

    # As root, as an administrator would; the second tmpfiles run hands the keys over.
    config = init(
        root / "etc/inboxpay",
        authserv_id,
        port=ports["milter"],
        sidecar_port=ports["sidecar"],
        sandbox_port=ports["sandbox"],
        metrics_port=ports["metrics"],
    )
    config.write_text(production_config(config.read_text("utf-8"), root, dns_port), "utf-8")
    config_module.load(config)  # the edited file is still a valid config
    # Hand the new keys to the service user before tmpfiles enforces their modes:
    # tmpfiles refuses to adjust a root-owned file inside a directory the user owns.
    user = account(root, "inboxpay")
    for key in (root / "etc/inboxpay/keys").iterdir():
        os.chown(key, user.uid, user.gid)
    run(tmpfiles)

    unit_dir = root / "etc/systemd/system"
    (unit_dir / f"{units.MILTER}.d").mkdir(parents=True)
    for name in units.SERVICES:
        text = (units.SYSTEMD / name).read_text("utf-8")
        (unit_dir / name).write_text(units.render(text, root), "utf-8")
    dropin = (units.SYSTEMD / units.POSTFIX_DROPIN).read_text("utf-8")
    (unit_dir / units.POSTFIX_DROPIN_AS).write_text(units.render(dropin, root), "utf-8")
    return Deployment(root, user, postfix.gr_gid, dict(ports))


# --- the unit's confinement, for confine.py ---


def syscall_groups() -> dict[str, list[str]]:
    """systemd's own syscall groups (``systemd-analyze syscall-filter``), unexpanded."""
    out = run([require("systemd-analyze", "apt-get install systemd"), "syscall-filter"]).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        text = line.strip()
        if line.startswith("@"):
            current = groups.setdefault(text, [])
        elif not line.startswith(" "):
            current = None  # a blank line ends a group, a note after the groups is none
        elif current is not None and not text.startswith("#"):
            current.append(text)
    return groups


def expand(names: Sequence[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def syscall_numbers() -> dict[str, int]:
    if not UNISTD.exists():
        pytest.fail(f"{UNISTD} not found: apt-get install linux-libc-dev", pytrace=False)
    found = re.findall(r"^#define __NR_(\w+) (\d+)$", UNISTD.read_text("ascii"), re.MULTILINE)
    return {name: int(nr) for name, nr in found}


def allowed_syscalls(unit: units.Unit) -> list[int] | None:
    """The numbers SystemCallFilter= lets through, applied in order as systemd does."""
    values = unit.values("Service", "SystemCallFilter")
    if not values:
        return None
    assert not values[0].startswith("~"), "only an allow-list first is emulated"
    groups = syscall_groups()
    allowed: set[str] = expand(["@default"], groups)  # systemd always permits @default
    for value in values:
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), groups)
        allowed = allowed - names if deny else allowed | names
    numbers = syscall_numbers()
    # Names of other architectures' calls have no number here, as for systemd.
    return sorted(numbers[n] for n in allowed if n in numbers)


def confinement(unit: units.Unit, users: Callable[[str], Account]) -> Spec:
    """What the unit asks of the kernel, for confine.py."""
    user = users(unit.value("Service", "User") or "root")
    families = unit.value("Service", "RestrictAddressFamilies")
    core = unit.value("Service", "LimitCORE")
    errno_name = unit.value("Service", "SystemCallErrorNumber")
    errno_numbers = {"EPERM": 1, "EACCES": 13}
    return Spec(
        uid=user.uid,
        gid=user.gid,
        umask=int(unit.value("Service", "UMask") or "0022", 8),
        core_limit=None if core is None else int(core),
        no_new_privileges=unit.value("Service", "NoNewPrivileges") == "yes",
        allowed_syscalls=allowed_syscalls(unit),
        errno=errno_numbers[errno_name] if errno_name else 1,
        native_only=unit.value("Service", "SystemCallArchitectures") == "native",
        memory_deny_write_execute=unit.value("Service", "MemoryDenyWriteExecute") == "yes",
        address_families=None if families is None else [_FAMILIES[f] for f in families.split()],
    )


def environment() -> dict[str, str]:
    """A service's environment: systemd passes almost nothing from the caller."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
