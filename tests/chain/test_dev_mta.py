"""A newcomer's chain: ``inboxpay init``, the milter, ``inboxpay dev-mta`` and
``inboxpay send-sample`` put a verified invoice in the demo inbox, as ``make run`` does.

The sample sender authenticates through the config's [[dns.static]] records, so no zone
server is needed: only the real milter process and the development Postfix.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import checks
from e2e.mail import Delivery
from e2e.procs import accepts_tcp, free_port, process_exited, stop, tail, wait_until
from e2e.session import running_milter, work_dir
from sidecar.procs import Sidecar

from inboxpay import cli
from inboxpay.config import load
from inboxpay.dev import mta as devmta
from inboxpay.dev.init import DEMO_MAILDIR, DEMO_USER, init

from .world import ConfiguredMilter


@pytest.fixture(scope="module")
def dev_dir() -> Iterator[Path]:
    with work_dir("inboxpay-dev-mta-") as root:
        yield root


def test_init_points_the_demo_inbox_at_the_dev_mta_maildir(tmp_path: Path) -> None:
    cfg = load(init(tmp_path))
    assert cfg.sidecar.demo_user == DEMO_USER
    assert cfg.sidecar.demo_maildir == tmp_path / DEMO_MAILDIR
    mta = devmta.for_config(
        tmp_path, cfg.milter.socket, "localhost", DEMO_USER, cfg.sidecar.demo_maildir
    )
    assert mta.maildir(DEMO_USER) == tmp_path / DEMO_MAILDIR
    assert (mta.host, mta.smtp_port) == ("127.0.0.1", 2525)
    assert mta.milter == "inet:127.0.0.1:8894"


def test_sample_reaches_the_demo_inbox_through_dev_mta(dev_dir: Path) -> None:
    host, port = "127.0.0.1", free_port()
    smtp = f"{host}:{port}"
    milter_port = free_port()
    path = init(
        dev_dir / "dev", port=milter_port, sidecar_port=free_port(), metrics_port=free_port()
    )
    maildir = load(path).sidecar.demo_maildir
    assert maildir is not None
    # The sample's SPF, DKIM and DMARC come from [[dns.static]]: no zone server behind 53.
    milter = ConfiguredMilter(path, milter_port, 53)
    output = dev_dir / "dev-mta.out"
    cli_cmd = [sys.executable, "-m", "inboxpay"]
    with running_milter(milter) as card_keys, output.open("wb") as out:
        mta = subprocess.Popen(
            [*cli_cmd, "dev-mta", "--config", str(path), "--listen", smtp],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: accepts_tcp(host, port), 20, "dev-mta", process_exited(mta, output))
            sent = subprocess.run(
                [*cli_cmd, "send-sample", "--config", str(path), "--to", DEMO_USER, "--smtp", smtp],
                capture_output=True,
                text=True,
                check=False,
            )
            assert sent.returncode == 0, sent.stderr
            new = maildir / "new"
            wait_until(lambda: any(new.iterdir()), 20, f"the sample in {new}")
            (delivered,) = new.iterdir()
            # Delivered by virtual(8) as an unprivileged uid, never root.
            assert delivered.stat().st_uid == devmta.NOBODY
            d = Delivery("?", DEMO_USER, delivered.read_bytes())
            claims = checks.card_claims(d, card_keys.verifier)
            assert claims["invoice"]["partner"] == "sample", claims

            with (
                Sidecar(path, dev_dir / "sidecar.log") as sidecar,
                urllib.request.urlopen(f"{sidecar.url}/demo/", timeout=10) as r,
            ):
                page = r.read().decode("utf-8")
            assert page.count(">Review and pay</button>") == 1, page
            assert f"Demo inbox of {DEMO_USER}" in page

            mta.send_signal(signal.SIGTERM)
            assert mta.wait(30) == 0, tail(output)
        finally:
            stop(mta, grace=30)
            # Had dev-mta been killed, its Postfix would still run: stop that too.
            devmta.for_config(path.parent, "inet:1", "x", DEMO_USER, maildir).stop_leftover()
    text = output.read_text("utf-8")
    log = (path.parent / devmta.POSTFIX_FOLDER / "postfix.log").read_text("utf-8")
    assert devmta.milter_warnings(log) == [], log
    assert f"mail to {DEMO_USER} lands in {maildir}/" in text, text
    assert "status=sent (delivered to maildir)" in text, text  # deliveries are echoed
    assert "dev-mta: Postfix stopped" in text, text
    assert not accepts_tcp(host, port)  # Postfix is gone with it


def test_dev_mta_needs_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["dev-mta", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "dev-mta needs root" in err and "sudo" in err, err
    assert not (tmp_path / devmta.POSTFIX_FOLDER).exists()  # nothing was started or written


@pytest.mark.parametrize(
    ("spec", "postfix"),
    [
        ("inet:8894@127.0.0.1", "inet:127.0.0.1:8894"),
        ("inet:8894", "inet:127.0.0.1:8894"),
        ("inet6:8894@[::1]", "inet:[::1]:8894"),
        ("unix:/run/inboxpay/milter.sock", "unix:/run/inboxpay/milter.sock"),
        ("local:/run/m.sock", "unix:/run/m.sock"),
        ("/run/m.sock", "unix:/run/m.sock"),
    ],
)
def test_milter_socket_as_postfix_names_it(spec: str, postfix: str) -> None:
    assert devmta.postfix_milter_socket(spec) == postfix


@pytest.mark.parametrize("listen", ["0.0.0.0:2525", "192.0.2.1:25", "localhost:2525", "127.0.0.1"])
def test_dev_mta_listens_on_loopback_only(listen: str, tmp_path: Path) -> None:
    with pytest.raises(devmta.DevMtaError, match=r"127\.x\.y\.z:PORT"):
        devmta.for_config(tmp_path, "inet:8894@127.0.0.1", "localhost", DEMO_USER, None, listen)
