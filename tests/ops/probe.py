"""Run inside a confinement: try what the units forbid and print how each attempt ended.

One line per attempt, ``NAME ok`` or ``NAME ERRNO``; then the umask and uid.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket

MAP_PRIVATE_ANONYMOUS = 0x22
PAGE = 4096

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
MAP_FAILED = ctypes.c_void_p(-1).value


def outcome(ok: bool) -> str:
    return "ok" if ok else errno.errorcode[ctypes.get_errno()]


def main() -> None:
    rwx = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
    wx = libc.mmap(None, PAGE, rwx, MAP_PRIVATE_ANONYMOUS, -1, 0)
    print("mmap_wx", outcome(wx not in (None, MAP_FAILED)))
    rw = libc.mmap(None, PAGE, mmap.PROT_READ | mmap.PROT_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0)
    assert rw not in (None, MAP_FAILED), "a plain read-write mapping must always work"
    print("mprotect_x", outcome(libc.mprotect(rw, PAGE, mmap.PROT_READ | mmap.PROT_EXEC) == 0))
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()
        print("netlink ok")
    except OSError as e:
        print("netlink", errno.errorcode[e.errno or 0])
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 5)  # lowering one's own priority needs no privilege
        print("setpriority ok")
    except OSError as e:
        print("setpriority", errno.errorcode[e.errno or 0])
    print("umask", oct(os.umask(0)), "uid", os.getuid())


if __name__ == "__main__":
    main()
