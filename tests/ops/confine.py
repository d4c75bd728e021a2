"""Run a command confined the way our systemd units confine it, without systemd.

The test machines have no running systemd (no ``systemctl start``, no
``systemd-run``), yet ``MemoryDenyWriteExecute=`` and ``SystemCallFilter=`` can
break a Python service in ways only running it shows. systemd implements both
with a seccomp filter installed just before ``execve``, after dropping to the
unit's user; this module does the same steps in the same order:

- ``User=``/``Group=``: setgroups([]), setgid, setuid;
- ``UMask=``, ``LimitCORE=``;
- ``NoNewPrivileges=yes`` (prctl), which also lets an unprivileged process load a filter;
- one classic-BPF seccomp program for ``SystemCallArchitectures=native``,
  ``MemoryDenyWriteExecute=yes`` (systemd's four rules: mmap with PROT_WRITE|PROT_EXEC,
  mprotect and pkey_mprotect with PROT_EXEC, shmat with SHM_EXEC),
  ``RestrictAddressFamilies=`` (socket() with another family: EAFNOSUPPORT) and the
  ``SystemCallFilter=`` allow-list, everything else failing with
  ``SystemCallErrorNumber=``.

Not emulated: the mount namespace (ProtectSystem=, ProtectHome=, PrivateTmp=,
PrivateDevices=) and the other Protect*= settings. The unit's user owning only its
own directories stands in for the read-only file system.

Run as ``python confine.py SPEC_JSON -- COMMAND...``; :class:`Spec` is the JSON.
x86-64 only, like the machines the suite runs on.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import struct
import sys
from dataclasses import asdict, dataclass

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
AND_K = 0x54
RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

# struct seccomp_data: int nr; __u32 arch; __u64 ip; __u64 args[6] (little-endian).
OFF_NR, OFF_ARCH = 0, 4


def off_arg(i: int) -> int:
    """The low 32 bits of argument ``i``: enough for the prot and flag words checked."""
    return 16 + 8 * i


NR_MMAP, NR_MPROTECT, NR_SHMAT, NR_SOCKET, NR_PKEY_MPROTECT = 9, 10, 30, 41, 329
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000

PR_SET_SECCOMP, SECCOMP_MODE_FILTER, PR_SET_NO_NEW_PRIVS = 22, 2, 38


@dataclass(frozen=True)
class Spec:
    uid: int
    gid: int
    umask: int
    core_limit: int | None
    no_new_privileges: bool
    allowed_syscalls: list[int] | None  # None: no SystemCallFilter=
    errno: int
    native_only: bool
    memory_deny_write_execute: bool
    address_families: list[int] | None  # None: no RestrictAddressFamilies=

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Spec:
        return cls(**json.loads(text))


Insn = tuple[int, int, int, int]  # code, jt, jf, k


def _ret(value: int) -> Insn:
    return (RET_K, 0, 0, value)


def _masked_rule(nr: int, arg: int, mask: int, action: int) -> list[Insn]:
    """Fail syscall ``nr`` with ``action`` when ``args[arg] & mask == mask``."""
    return [
        (LD_W_ABS, 0, 0, OFF_NR),
        (JEQ_K, 0, 4, nr),  # not this call: skip the 4 below
        (LD_W_ABS, 0, 0, off_arg(arg)),
        (AND_K, 0, 0, mask),
        (JEQ_K, 0, 1, mask),
        _ret(action),
    ]


def _family_rule(families: list[int]) -> list[Insn]:
    n = len(families)
    insns: list[Insn] = [
        (LD_W_ABS, 0, 0, OFF_NR),
        (JEQ_K, 0, n + 2, NR_SOCKET),  # skip the argument load, the n tests and the ret
        (LD_W_ABS, 0, 0, off_arg(0)),
    ]
    # An allowed family jumps over the remaining tests and the ret.
    insns += [(JEQ_K, n - i, 0, family) for i, family in enumerate(families)]
    insns.append(_ret(RET_ERRNO | errno.EAFNOSUPPORT))
    return insns


def program(spec: Spec) -> list[Insn]:
    deny = RET_ERRNO | (spec.errno & 0xFFFF)
    insns: list[Insn] = []
    if spec.native_only:
        insns += [
            (LD_W_ABS, 0, 0, OFF_ARCH),
            (JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            _ret(deny),
            (LD_W_ABS, 0, 0, OFF_NR),
            (JGE_K, 0, 1, X32_SYSCALL_BIT),
            _ret(deny),
        ]
    if spec.memory_deny_write_execute:
        eperm = RET_ERRNO | errno.EPERM  # systemd's MDWE rules always say EPERM
        insns += _masked_rule(NR_MMAP, 2, PROT_WRITE | PROT_EXEC, eperm)
        insns += _masked_rule(NR_MPROTECT, 2, PROT_EXEC, eperm)
        insns += _masked_rule(NR_PKEY_MPROTECT, 2, PROT_EXEC, eperm)
        insns += _masked_rule(NR_SHMAT, 2, SHM_EXEC, eperm)
    if spec.address_families is not None:
        insns += _family_rule(spec.address_families)
    if spec.allowed_syscalls is None:
        insns.append(_ret(RET_ALLOW))
    else:
        insns.append((LD_W_ABS, 0, 0, OFF_NR))
        for nr in sorted(set(spec.allowed_syscalls)):
            # jt/jf are 8 bits wide: each test gets its own ret right behind it.
            insns += [(JEQ_K, 0, 1, nr), _ret(RET_ALLOW)]
        insns.append(_ret(deny))
    if len(insns) > 4096:
        raise ValueError(f"seccomp program too long: {len(insns)} instructions")
    return insns


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_filter(insns: list[Insn]) -> None:
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in insns)
    buf = ctypes.create_string_buffer(raw, len(raw))
    prog = _SockFprog(len(insns), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp filter not loaded: {os.strerror(e)}")


def confine(spec: Spec) -> None:
    """Apply ``spec`` to this process, in systemd's order."""
    if spec.core_limit is not None:
        resource.setrlimit(resource.RLIMIT_CORE, (spec.core_limit, spec.core_limit))
    if os.getuid() != spec.uid or os.getgid() != spec.gid:
        os.setgroups([])
        os.setgid(spec.gid)
        os.setuid(spec.uid)
    os.umask(spec.umask)
    libc = ctypes.CDLL(None, use_errno=True)
    if spec.no_new_privileges and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    load_filter(program(spec))


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: confine.py SPEC_JSON -- COMMAND...")
    confine(Spec.from_json(argv[1]))
    os.execv(argv[3], argv[3:])


if __name__ == "__main__":
    main(sys.argv)
