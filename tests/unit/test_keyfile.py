"""The one reader and writer of key files: errors name the key, new files are 0600 and
never overwrite, and ``private=True`` refuses a key file others may read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inboxpay import keyfile
from inboxpay.errors import ConfigError


def test_create_writes_0600_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "k.key"
    keyfile.create(path, b"secret\n")
    assert path.read_bytes() == b"secret\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        keyfile.create(path, b"other\n")
    assert path.read_bytes() == b"secret\n"


def test_read_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^\[x\] key_file: cannot read .*nope"):
        keyfile.read(tmp_path / "nope", "[x] key_file")
    with pytest.raises(ConfigError, match=r"^\[x\] key_file: cannot read .*Is a directory"):
        keyfile.read(tmp_path, "[x] key_file")


def test_read_if_exists_is_none_only_for_a_missing_file(tmp_path: Path) -> None:
    assert keyfile.read_if_exists(tmp_path / "nope", "[x] y") is None
    (tmp_path / "k").write_bytes(b"k")
    assert keyfile.read_if_exists(tmp_path / "k", "[x] y") == b"k"
    with pytest.raises(ConfigError, match=r"^\[x\] y: cannot read"):
        keyfile.read_if_exists(tmp_path, "[x] y")


def test_only_a_private_read_checks_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"k")
    path.chmod(0o640)
    assert keyfile.read(path, "[x] y") == b"k"
    with pytest.raises(ConfigError, match=r"^\[x\] y: .*mode is 0640, must be 0600"):
        keyfile.read(path, "[x] y", private=True)
    path.chmod(0o600)
    data, st = keyfile.read_with_stat(path, "[x] y", private=True)
    assert data == b"k" and st.st_ino == path.stat().st_ino
    with pytest.raises(ConfigError, match=r"^\[x\] y: .*is not a regular file"):
        keyfile.read(tmp_path, "[x] y", private=True)
