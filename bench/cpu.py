"""CPU time of the mail path itself, read from /proc, whatever else the machine runs.

On a shared machine the msgs/s figures move with other people's load; the CPU the
benchmark's own processes spend per message does not (much). The mail path is the
private Postfix (its master, every daemon it forked, and those it already reaped)
plus this script's children: the milter, smtp-sink, dnsmasq and smtp-source.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii", errors="replace")
    except OSError:
        return None  # gone between listing and reading
    # The command name is in parentheses and may hold spaces: split after it.
    return stat[stat.rindex(")") + 2 :].split()


def _children(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[1]) == parent:
                pids.append(int(entry))
    return pids


def _own_ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def _reaped_ticks(fields: list[str]) -> int:
    return int(fields[13]) + int(fields[14])  # cutime + cstime of waited-for children


def _live_children_ticks(parent: int) -> int:
    """Every live descendant's own CPU and what it reaped (a milter's worker processes
    are grandchildren of the benchmark)."""
    total = 0
    for pid in _children(parent):
        fields = _stat_fields(pid)
        if fields is not None:
            total += _own_ticks(fields) + _reaped_ticks(fields) + _live_children_ticks(pid)
    return total


def tree_seconds(pid: int) -> float:
    """CPU of ``pid``, its live children and the children it reaped (one level deep)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    ticks = _own_ticks(fields) + _reaped_ticks(fields) + _live_children_ticks(pid)
    return ticks / _TICK


def children_seconds() -> float:
    """CPU of this process's children, live and reaped, not of this process itself."""
    times = os.times()
    reaped = times.children_user + times.children_system
    return reaped + _live_children_ticks(os.getpid()) / _TICK


def mail_path_seconds(postfix_master: int | None) -> float:
    """CPU so far of everything the run consists of (Postfix is a daemon: not our child)."""
    postfix = tree_seconds(postfix_master) if postfix_master is not None else 0.0
    return children_seconds() + postfix
