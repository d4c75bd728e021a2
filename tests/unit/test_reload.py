"""The milter takes a rotated signing key and an edited config without a restart
(milter/reload.py): the watcher's check is called directly, no timers waited on."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from inboxpay import cli, config
from inboxpay.atomicfile import stamp
from inboxpay.card.keyring import load_signing_keys
from inboxpay.card.keys import kid_of, load_signing_key
from inboxpay.dev.init import init
from inboxpay.milter.reload import Reloader, stamps
from inboxpay.milter.server import Runtime

NEW_PARTNER = """
[[partners]]
id = "acme"
name = "Acme Billing"
sender_domains = ["billing.acme.test"]
invoice_url_hosts = ["pay.acme.test"]
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return init(tmp_path)


def watch(runtime: Runtime) -> Reloader:
    # A period nobody waits for: the tests call check() themselves.
    return Reloader(lambda: runtime.config, runtime.reload, every=3600)


def test_a_rotated_key_signs_the_next_card(
    path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(config.load(path))
    reloader = watch(runtime)
    old_kid = runtime.settings.signer.kid
    assert reloader.check() is False  # nothing changed yet

    assert cli.main(["keys", "rotate-signing", "--config", str(path)]) == 0
    capsys.readouterr()
    new_kid = kid_of(load_signing_key(runtime.config.signing.key_file))
    assert runtime.settings.signer.kid == old_kid  # until the watcher looks
    with caplog.at_level(logging.INFO, logger="inboxpay.milter.server"):
        assert reloader.check() is True
    assert runtime.settings.signer.kid == new_kid != old_kid
    assert any(r.getMessage() == "configuration reloaded" for r in caplog.records)
    assert reloader.check() is False  # once per change

    # What the milter signs now, a sidecar reading the same files verifies.
    value = runtime.settings.signer.sign({"v": 1, "jti": "after-rotation"})
    assert load_signing_keys(runtime.config.signing).verifier().verify(value)["v"] == 1


def test_an_edited_config_replaces_partners_and_orgs_but_keeps_store_switches(
    path: Path,
) -> None:
    runtime = Runtime(config.load(path))
    reloader = watch(runtime)
    runtime.set_orgs({"switched-off.test": False})  # from the store (OrgSync)
    before = runtime.loaded

    path.write_text(
        path.read_text() + NEW_PARTNER + '\n[orgs."example.org"]\npay_enabled = false\n'
    )
    assert reloader.check() is True
    assert "acme" in {p.id for p in runtime.policy.partners}
    assert runtime.policy.orgs == {"example.org": False, "switched-off.test": False}
    # Settings and policy were swapped together, as one object.
    assert runtime.loaded is not before and runtime.loaded.config.path == path

    runtime.set_orgs({})  # the store's switch removed: the config's [orgs] stay
    assert runtime.policy.orgs == {"example.org": False}


def test_a_config_that_no_longer_loads_keeps_the_running_settings(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(config.load(path))
    reloader = watch(runtime)
    good = runtime.loaded
    text = path.read_text()

    path.write_text(text.replace('alignment = "relaxed"', 'alignment = "sideways"'))
    with caplog.at_level(logging.ERROR, logger="inboxpay.milter.reload"):
        assert reloader.check() is False
    assert runtime.loaded is good
    assert "configuration not reloaded" in caplog.text
    assert "[policy] alignment" in caplog.text
    caplog.clear()
    assert reloader.check() is False and caplog.text == ""  # logged once, not every round

    path.write_text(text.replace('alignment = "relaxed"', 'alignment = "strict"'))
    assert reloader.check() is True
    assert runtime.policy.alignment == "strict"


def test_a_bad_key_file_keeps_the_running_key(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime(config.load(path))
    reloader = watch(runtime)
    signer = runtime.settings.signer
    runtime.config.signing.key_file.write_text("not a key\n")
    with caplog.at_level(logging.ERROR, logger="inboxpay.milter.reload"):
        assert reloader.check() is False
    assert runtime.settings.signer is signer
    assert "[signing] key_file" in caplog.text


def test_settings_that_need_a_restart_are_named(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(config.load(path))
    reloader = watch(runtime)
    path.write_text(path.read_text().replace("port = 53\n", "port = 5353\n", 1))
    with caplog.at_level(logging.WARNING, logger="inboxpay.milter.reload"):
        assert reloader.check() is True
    assert "take effect at the next restart: [dns] port" in caplog.text


def test_a_moved_metrics_port_is_named_for_a_restart(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The metrics port is bound once at start-up; a reload cannot move it.
    runtime = Runtime(config.load(path))
    reloader = watch(runtime)
    text = path.read_text()
    assert "127.0.0.1:9894" in text
    path.write_text(text.replace("127.0.0.1:9894", "127.0.0.1:9895", 1))
    with caplog.at_level(logging.WARNING, logger="inboxpay.milter.reload"):
        assert reloader.check() is True
    assert "[milter] metrics_listen" in caplog.text


def test_the_thread_checks_every_period(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = Runtime(config.load(path))
    reloaded = threading.Event()

    def apply(cfg: config.Config) -> None:
        runtime.reload(cfg)
        reloaded.set()

    reloader = Reloader(lambda: runtime.config, apply, every=0.02)
    reloader.start()
    try:
        assert cli.main(["keys", "rotate-signing", "--config", str(path)]) == 0
        assert reloaded.wait(10)
    finally:
        reloader.stop()
        reloader.join(5)
    capsys.readouterr()
    assert runtime.settings.signer.kid == kid_of(load_signing_key(runtime.config.signing.key_file))


def test_a_rotation_between_loading_and_watching_is_still_picked_up(path: Path) -> None:
    # The milter loads its config, then starts the watcher later (after the store and
    # the metrics port): a rotation landing in between must not be missed.
    before = stamp(path)
    cfg = config.load(path)
    seen = stamps(cfg, before)  # what run() takes before the keys are read
    runtime = Runtime(cfg)
    old = runtime.settings.signer.kid
    assert cli.main(["keys", "rotate-signing", "--config", str(path)]) == 0
    reloader = Reloader(lambda: runtime.config, runtime.reload, every=3600, seen=seen)
    assert reloader.check() is True
    assert runtime.settings.signer.kid != old
