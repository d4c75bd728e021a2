"""``inboxpay config check``: every problem of the config and its key files, one per line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inboxpay import cli
from inboxpay.dev.init import init

PREFIX = "inboxpay: config error: "


def broken(tmp_path: Path) -> Path:
    """A development config with problems in many sections and in three key files."""
    path = init(tmp_path / "dev")
    text = path.read_text()
    for old, new in [
        (
            "[milter]\n",
            '[milter]\nmax_dkim_signatures = "5"\nsocket_typo = 1\n'
            'internal_networks = ["10.0.0.0/8", "ten-net"]\n',
        ),
        ("timeout = 5.0", "timeout = 0"),
        ('alignment = "relaxed"', 'alignment = "loose"'),
        ('id = "xero"', 'id = "Xero Ltd"'),
        ('sender_domains = ["freshbooks.com"]', 'sender_domains = ["fresh books"]'),
        ('listen = "127.0.0.1:8080"', 'listen = "nowhere"'),
        ('key_file = "keys/card-signing.pem"', 'key_file = "keys/missing.pem"'),
    ]:
        assert old in text
        text = text.replace(old, new, 1)
    path.write_text(text + "\n[limits]\npayment_attempts_per_hour = 0\n")
    (path.parent / "keys" / "recipient.key").write_text("short\n")
    (path.parent / "keys" / "vault.json").chmod(0o644)
    return path


EXPECTED = [
    "[milter] internal_networks: not a network: 'ten-net'",
    "[milter] max_dkim_signatures: expected int, got '5'",
    "[milter] socket_typo: unknown key",
    "[dns] timeout: must be more than 0 and at most 60 seconds",
    "[policy] alignment: must be 'relaxed' or 'strict'",
    "[[partners]] #1 id: expected lowercase letters, digits, - or _: 'Xero Ltd'",
    "[[partners]] #2 sender_domains: not a domain name: 'fresh books'",
    "[sidecar] listen: expected HOST:PORT, got 'nowhere'",
    "[limits] payment_attempts_per_hour: must be 1..100000",
    "[signing] key_file: cannot read ",
    "[signing] recipient_key_file: ",
    "[vault] key_file: ",
]


def test_check_reports_every_error_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = broken(tmp_path)
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert all(line.startswith(PREFIX) for line in lines)
    assert len(lines) == len(EXPECTED)
    for line, expected in zip(lines, EXPECTED, strict=True):
        assert line.removeprefix(PREFIX).startswith(expected), line
    assert "must hold base64 text" in lines[-2] and "must be 0600" in lines[-1]


def test_the_process_exits_2_with_every_line_on_stderr(tmp_path: Path) -> None:
    path = broken(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "inboxpay", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == len(EXPECTED)


def test_a_bad_key_path_is_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path / "dev")
    text = path.read_text().replace('recipient_key_file = "keys/recipient.key"', "")
    path.write_text(text.replace("timeout = 5.0", "timeout = 0"))
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{PREFIX}[dns] timeout: must be more than 0 and at most 60 seconds",
        f"{PREFIX}[signing] recipient_key_file: missing",  # not also "cannot read"
    ]


def test_a_milter_only_config_needs_no_vault_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path / "dev")
    text = path.read_text()
    text = text[: text.index("# --- the sidecar")]  # the mail side only
    path.write_text(text)
    (path.parent / "keys" / "vault.json").unlink()
    assert cli.main(["config", "check", "--config", str(path)]) == 0
    assert "ok (3 partners" in capsys.readouterr().out
    path.write_text(text + '[vault]\nkey_file = "keys/vault.json"\n')  # now it is in use
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    assert "[vault] key_file: cannot read" in capsys.readouterr().err


def test_other_commands_print_every_error_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = broken(tmp_path)
    assert cli.main(["keys", "public", "--config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 9  # the config's errors; key files are read only once it is valid
    assert all(line.startswith(PREFIX) for line in lines)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:\u00b2"', "[sidecar] listen: expected"),
        (
            'key_file = "keys/card-signing.pem"',
            'key_file = "keys/card\\u0000signing.pem"',
            "[signing] key_file: a path cannot hold a NUL",
        ),
    ],
)
def test_odd_values_are_config_errors_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    path = init(tmp_path / "dev")
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert PREFIX + expected in err, err


def test_the_sidecars_and_processors_key_files_are_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path / "dev")
    keys = path.parent / "keys"
    (keys / "webmail-issuer.pem").write_text("not a key\n")
    (keys / "processor-sandbox.pub.jwk").write_text("{\n")
    (keys / "processor-api.key").write_text("short\n")
    (keys / "processor-sandbox.jwk").unlink()
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    lines = [line.removeprefix(PREFIX) for line in capsys.readouterr().err.splitlines()]
    assert [line.split(":")[0] for line in lines] == [
        "[[sidecar.issuers]] dev-webmail key_file",
        "[processors.sandbox] public_key_file",
        "[processors.sandbox] api_key_file",
        "[sandbox] key_file",
        "[sandbox] api_key_file",
    ]


def test_a_partners_signed_request_keys_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path / "dev")
    keys = path.parent / "keys"
    assert cli.main(["config", "check", "--config", str(path)]) == 0  # init's public key loads
    capsys.readouterr()
    # The private key in place of the public one: refused, and the message names the key.
    (keys / "sample-request.pub.pem").write_bytes((keys / "sample-request.pem").read_bytes())
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert PREFIX + "[[partners]] sample signed_request_keys: " in err
    assert "holds a private key" in err
    (keys / "sample-request.pub.pem").unlink()
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    assert "signed_request_keys: cannot read" in capsys.readouterr().err
