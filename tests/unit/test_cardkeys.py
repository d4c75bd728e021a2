"""The sidecar's card keys fail closed: a retired-keys file that no longer loads (a botched
revocation) leaves only the current key trusted, never the keys it used to list."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inboxpay import config
from inboxpay.card.header import CardError
from inboxpay.card.keyring import rotate
from inboxpay.dev.init import init
from inboxpay.sidecar.cardkeys import CardKeys
from tests.support.cards import sign_card


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(init(tmp_path))


def _rotated(cfg: config.Config) -> tuple[str, CardKeys]:
    """A card signed by a key that is then rotated out (in grace), and the sidecar's keys."""
    old_card = sign_card(cfg, ["alice@example.test"])
    keys = CardKeys(cfg.signing)
    rotate(cfg.signing)
    assert keys.verify(old_card)["v"] == 1  # retired, in grace: still verifies
    return old_card, keys


def test_an_unreadable_retired_file_stops_trusting_the_retired_keys(cfg: config.Config) -> None:
    old_card, keys = _rotated(cfg)
    new_card = sign_card(cfg, ["alice@example.test"])
    cfg.signing.retired_keys_file.write_text('{"keys": [ broken')  # a revocation gone wrong
    with pytest.raises(CardError) as refused:
        keys.verify(old_card)
    assert refused.value.code == "unknown_kid"
    assert keys.verify(new_card)["v"] == 1  # the current key still works
    assert [k["kid"] for k in keys.jwks()["keys"]] == [keys.jwks()["keys"][0]["kid"]]


def test_a_fixed_file_is_read_again_even_when_only_its_ctime_changed(
    cfg: config.Config,
) -> None:
    # As after a chmod or chown that makes the file readable again: same inode, size
    # and mtime, a new ctime.
    old_card, keys = _rotated(cfg)
    retired = cfg.signing.retired_keys_file
    good = retired.read_bytes()
    retired.write_bytes(b"x" * len(good))
    broken = os.stat(retired)
    with pytest.raises(CardError):
        keys.verify(old_card)
    retired.write_bytes(good)  # in place: same inode, same size
    os.utime(retired, ns=(broken.st_atime_ns, broken.st_mtime_ns))
    assert os.stat(retired).st_mtime_ns == broken.st_mtime_ns
    assert keys.verify(old_card)["v"] == 1


def test_a_broken_current_key_keeps_the_current_key_and_drops_the_retired(
    cfg: config.Config,
) -> None:
    old_card, keys = _rotated(cfg)
    new_card = sign_card(cfg, ["alice@example.test"])
    cfg.signing.key_file.write_text("garbage")
    with pytest.raises(CardError):
        keys.verify(old_card)
    assert keys.verify(new_card)["v"] == 1
