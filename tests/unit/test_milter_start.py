"""Starting the milter: a bad key file stops it before libmilter starts, with one worker
or several, and the workers' supervisor holds none of the message path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inboxpay import config
from inboxpay.dev.init import init
from inboxpay.errors import ConfigError
from inboxpay.milter.main import check_in_child


def dev_config(tmp_path: Path, workers: int) -> Path:
    """A development config on a unix socket in ``tmp_path``, with ``workers``."""
    path = init(tmp_path / "dev")
    text = path.read_text()
    socket_line = next(line for line in text.splitlines() if line.startswith("socket = "))
    text = text.replace(socket_line, f'socket = "unix:{tmp_path / "milter.sock"}"', 1)
    path.write_text(text.replace("[milter]\n", f"[milter]\nworkers = {workers}\n", 1))
    return path


def test_the_child_check_reports_the_config_error_of_a_bad_key(tmp_path: Path) -> None:
    path = dev_config(tmp_path, 2)
    (path.parent / "keys" / "card-signing.pem").write_text("not a key\n")
    with pytest.raises(ConfigError) as raised:
        check_in_child(config.load(path))
    assert raised.value.errors == (
        f"[signing] key_file: {path.parent / 'keys' / 'card-signing.pem'} "
        "is not an Ed25519 PKCS#8 PEM key",
    )


def test_the_child_check_passes_good_keys(tmp_path: Path) -> None:
    check_in_child(config.load(dev_config(tmp_path, 2)))  # returns: nothing to report


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_key_file_stops_the_milter_before_it_listens(tmp_path: Path, workers: int) -> None:
    path = dev_config(tmp_path, workers)
    (path.parent / "keys" / "recipient.key").write_text("short\n")
    done = subprocess.run(
        [sys.executable, "-m", "inboxpay", "milter", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "inboxpay: config error: [signing] recipient_key_file: " in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "milter.sock").exists()  # libmilter never opened it


def test_the_supervisor_imports_none_of_the_message_path() -> None:
    # What the supervisor process loads before it forks its workers (milter/main.py).
    code = (
        "import sys, inboxpay.cli, inboxpay.milter.main, inboxpay.milter.workers\n"
        "heavy = ('dkim', 'spf', 'dns', 'joserfc', 'cryptography', 'selectolax',\n"
        "         'inboxpay.invoice', 'inboxpay.auth', 'inboxpay.milter.pipeline',\n"
        "         'inboxpay.milter.metrics', 'inboxpay.milter.server', 'inboxpay.card')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "             or any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
