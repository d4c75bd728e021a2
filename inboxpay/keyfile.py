"""Reading and writing key files: one reader and one writer for every component's keys.

Every read error is a ConfigError naming the key (``[signing] key_file: cannot read
...``), so an administrator can fix it from one line. A new key file is created 0600 and
never over an existing one; a key file is replaced through :mod:`inboxpay.atomicfile`,
so readers see the old file or the new, never half of one.

``private=True`` also refuses what is not a regular file, and a file of ours that group
or others may read: the vault's key file is read so. The other key files are not: their
owners and modes are the deployer's (a signing key of mode 0640 is read and kept so by
rotation), and public key files are copied about on purpose.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from inboxpay.atomicfile import fsync_dir
from inboxpay.errors import ConfigError


def read_with_stat(
    path: Path, key_name: str, *, private: bool = False
) -> tuple[bytes, os.stat_result]:
    """The file's bytes and its stat (to replace it keeping owner and mode); raises
    ConfigError naming ``key_name``."""
    found = _read(path, key_name, private=private, missing_ok=False)
    assert found is not None  # missing_ok=False: a missing file raised
    return found


def _read(
    path: Path, key_name: str, *, private: bool, missing_ok: bool
) -> tuple[bytes, os.stat_result] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        if missing_ok:
            return None
        raise ConfigError(f"{key_name}: cannot read {path}: {e.strerror}") from e
    except OSError as e:
        raise ConfigError(f"{key_name}: cannot read {path}: {e.strerror}") from e
    try:
        # fstat on the open file, not stat on the path: the file checked is the file read.
        st = os.fstat(fd)
        if private:
            _check_private(st, f"{key_name}: {path}")
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(f"{key_name}: cannot read {path}: {e.strerror}") from e
    finally:
        os.close(fd)
    return data, st


def _check_private(st: os.stat_result, prefix: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{prefix}: is not a regular file")
    # A file owned by someone else can only be read through group or other bits, so
    # those are the deployer's choice; on our own file they only widen exposure.
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(f"{prefix}: mode is {mode:04o}, must be 0600 (chmod 600)")


def read(path: Path, key_name: str, *, private: bool = False) -> bytes:
    """The file's bytes; raises ConfigError naming ``key_name``."""
    return read_with_stat(path, key_name, private=private)[0]


def read_if_exists(path: Path, key_name: str) -> bytes | None:
    """The file's bytes, or None when there is no such file; else as :func:`read`."""
    found = _read(path, key_name, private=False, missing_ok=True)
    return None if found is None else found[0]


def create(path: Path, data: bytes) -> None:
    """Create a key file readable only by us (0600), flushed to disk with its directory
    entry; the directories above it are made if missing.

    Raises OSError, FileExistsError when the file exists: a key is never overwritten,
    because that would orphan every card or record made with it. A failed write leaves
    no file behind (an empty key file would block the next attempt and hold no key).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    fsync_dir(path.parent)
