"""Replacing key files so that a reader (or a crash) only ever sees the old file or the new,
and noticing, in a running process, that they were replaced.

A temporary file in the same directory is written, given the old file's owner and mode,
flushed to disk, and renamed over the old name; the directory is synced so the rename
survives a power cut. Readers that open the path get one whole file, never a half.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

# (inode, size, mtime_ns, ctime_ns); None: missing or unreadable
Stamp = tuple[int, int, int, int] | None


def stamp(path: Path) -> Stamp:
    """What changes when the file is replaced or edited: a cheap test for "re-read it"."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    # The inode too: a replaced key file has the same size, and may have the same mtime
    # on a file system with coarse timestamps. ctime: a chmod or chown that makes an
    # unreadable file readable again must be noticed too.
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def fsync_dir(directory: Path) -> None:
    # The rename (or the new name) is only durable once the directory is synced.
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, like: os.stat_result | None = None) -> None:
    """Atomically (re)place ``path`` with ``data``; owner and mode from ``like`` (else ours, 0600).

    Raises OSError; the temporary file never outlives a failure.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        if like is not None:
            # Run as root on a file the service user owns: a root-owned replacement
            # would lock the service out of its own key.
            if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, like.st_uid, like.st_gid)
            os.fchmod(fd, stat.S_IMODE(like.st_mode))
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on a directory (flock), for read-modify-write of files inside it.

    Locking the directory rather than a file in it: the files are replaced by rename, so
    a lock on one would be a lock on an inode nobody opens any more; and no lock file is
    left behind in a key directory.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
