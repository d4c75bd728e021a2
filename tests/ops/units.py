"""Reading our systemd unit files, and rendering them into a temporary root.

The shipped units name real install paths (/usr/local/bin/inboxpay,
/etc/inboxpay/inboxpay.toml, /var/spool/postfix/inboxpay). Rendering prefixes
exactly those paths with a temporary root, so ``systemd-analyze verify`` and the
services themselves can run against files that exist, without touching /etc.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"

MILTER = "inboxpay-milter.service"
SIDECAR = "inboxpay-sidecar.service"
SANDBOX = "inboxpay-processor-sandbox.service"
SERVICES = (MILTER, SIDECAR, SANDBOX)
#: The drop-in for a unix socket reachable from Postfix's chroot, and where it goes.
POSTFIX_DROPIN = "inboxpay-milter-postfix-socket.conf"
POSTFIX_DROPIN_AS = f"{MILTER}.d/postfix-socket.conf"
SYSUSERS = "inboxpay.sysusers.conf"
TMPFILES = ("inboxpay.tmpfiles.conf", "inboxpay-postfix-socket.tmpfiles.conf")

#: The install paths the units may name; every absolute path in them must be one of these.
INSTALL_PATHS = (
    "/usr/local/bin/inboxpay",
    "/etc/inboxpay/inboxpay.toml",
    "/var/spool/postfix/inboxpay",
)
_ABSOLUTE = re.compile(r"(?<![\w/])/[\w./-]+")


@dataclass
class Unit:
    """A unit file's settings: section -> key -> every value, in order (keys may repeat)."""

    path: Path
    sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def values(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        return found[-1] if found else None  # the last assignment wins, as in systemd

    def exec_start(self) -> list[str]:
        found = self.values("Service", "ExecStart")
        assert len(found) == 1, f"{self.path.name}: expected one ExecStart=, got {found}"
        return shlex.split(found[0])


def parse(path: Path) -> Unit:
    unit = Unit(path)
    section: dict[str, list[str]] | None = None
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text[0] in "#;":
            continue
        assert not text.endswith("\\"), f"{path}:{number}: keep settings on one line"
        if text.startswith("[") and text.endswith("]"):
            section = unit.sections.setdefault(text[1:-1], {})
            continue
        key, sep, value = text.partition("=")
        assert sep and section is not None, f"{path}:{number}: not a setting: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def merged(unit: Unit, *dropins: Unit) -> Unit:
    """The unit with drop-ins applied: their assignments come after the unit's own."""
    out = Unit(
        unit.path, {s: {k: list(v) for k, v in keys.items()} for s, keys in unit.sections.items()}
    )
    for dropin in dropins:
        for s, keys in dropin.sections.items():
            for k, values in keys.items():
                out.sections.setdefault(s, {}).setdefault(k, []).extend(values)
    return out


def absolute_paths(path: Path) -> set[str]:
    """Every absolute path a unit file's settings (not its comments) name."""
    found: set[str] = set()
    for line in path.read_text("utf-8").splitlines():
        text = line.strip()
        if text and text[0] not in "#;[":
            found.update(_ABSOLUTE.findall(text.partition("=")[2]))
    return found


def render(text: str, root: Path) -> str:
    """``text`` with each install path moved under ``root``."""
    for install_path in INSTALL_PATHS:
        text = re.sub(
            rf"(?<![\w/]){re.escape(install_path)}(?![\w.-])", f"{root}{install_path}", text
        )
    return text
