"""Card-signing key rotation: the keyring (current + retired keys), the grace period, the
retired-keys file, atomic replacement, and ``inboxpay keys rotate-signing``."""

from __future__ import annotations

import json
import os
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from inboxpay import atomicfile, cli, config
from inboxpay.card.header import CardError, CardSigner
from inboxpay.card.keyring import DAY, load_signing_keys, rotate
from inboxpay.card.keys import generate_signing_key, kid_of, load_signing_key
from inboxpay.config import SigningConfig
from inboxpay.dev.init import init
from inboxpay.errors import ConfigError

T = 1_800_000_000  # a fixed "now" for rotations


def signing_in(tmp_path: Path, grace_days: int = 180, kid: str | None = None) -> SigningConfig:
    keys = tmp_path / "keys"
    generate_signing_key(keys / "card-signing.pem")
    return SigningConfig(
        key_file=keys / "card-signing.pem",
        recipient_key_file=keys / "recipient.key",
        retired_keys_file=keys / "card-signing-retired.json",
        retired_key_grace_days=grace_days,
        kid=kid,
    )


def card(signing: SigningConfig) -> str:
    """A card signed with the current key, as the milter signs one."""
    key = load_signing_key(signing.key_file)
    return CardSigner(key, kid_of(key)).sign({"v": 1, "jti": uuid.uuid4().hex})


def current_kid(signing: SigningConfig) -> str:
    return kid_of(load_signing_key(signing.key_file))


def kids(jwks: dict[str, list[dict[str, object]]]) -> list[object]:
    return [k["kid"] for k in jwks["keys"]]


# --- the keyring ---


def test_without_a_retired_file_only_the_current_key_verifies(tmp_path: Path) -> None:
    signing = signing_in(tmp_path)
    ring = load_signing_keys(signing)
    assert ring.retired == () and kids(ring.jwks()) == [current_kid(signing)]
    assert ring.verifier().verify(card(signing))["v"] == 1


def test_rotating_twice_keeps_both_old_keys_verifiable(tmp_path: Path) -> None:
    signing = signing_in(tmp_path)
    k1, c1 = current_kid(signing), card(signing)
    first = rotate(signing, now=T)
    k2, c2 = current_kid(signing), card(signing)
    second = rotate(signing, now=T + 60)
    k3, c3 = current_kid(signing), card(signing)

    assert (first.old_kid, first.new_kid, second.old_kid, second.new_kid) == (k1, k2, k2, k3)
    assert len({k1, k2, k3}) == 3
    assert second.kept == (k1,) and second.pruned == ()
    assert first.verifiable_until == T + 180 * DAY
    ring = load_signing_keys(signing)
    assert (ring.kid, [r.kid for r in ring.retired]) == (k3, [k1, k2])
    for value in (c1, c2, c3):
        assert ring.verifier().verify(value, now=T + 120)["v"] == 1
    assert kids(ring.jwks(now=T + 120)) == [k3, k1, k2]

    # Public keys only, each with the moment it was retired.
    entries = json.loads(signing.retired_keys_file.read_text())["keys"]
    assert [(e["kid"], e["retired_at"]) for e in entries] == [(k1, T), (k2, T + 60)]
    assert all("d" not in e and e["crv"] == "Ed25519" for e in entries)
    assert stat.S_IMODE(signing.retired_keys_file.stat().st_mode) == 0o600


def test_a_key_past_its_grace_period_is_refused_as_retired(tmp_path: Path) -> None:
    signing = signing_in(tmp_path, grace_days=1)
    old, old_kid = card(signing), current_kid(signing)
    rotate(signing, now=T)
    ring = load_signing_keys(signing)
    assert ring.verifier().verify(old, now=T + DAY - 1)["v"] == 1
    with pytest.raises(CardError) as refused:
        ring.verifier().verify(old, now=T + DAY)
    assert refused.value.code == "retired_key"
    assert old_kid in kids(ring.jwks(now=T + DAY - 1))
    assert old_kid not in kids(ring.jwks(now=T + DAY))
    # The current key has no grace period.
    assert ring.verifier().verify(card(signing), now=T + 3650 * DAY)["v"] == 1


def test_a_forged_card_under_a_retired_kid_is_a_bad_signature(tmp_path: Path) -> None:
    signing = signing_in(tmp_path, grace_days=1)
    old_kid = current_kid(signing)
    rotate(signing, now=T)
    forged = CardSigner(load_signing_key(signing.key_file), old_kid).sign({"v": 1})
    with pytest.raises(CardError) as refused:
        load_signing_keys(signing).verifier().verify(forged, now=T + 2 * DAY)
    assert refused.value.code == "bad_signature"  # "retired_key" only for genuine cards


def test_rotation_prunes_keys_past_their_grace_period(tmp_path: Path) -> None:
    signing = signing_in(tmp_path, grace_days=1)
    k1 = current_kid(signing)
    rotate(signing, now=T)
    k2 = current_kid(signing)
    done = rotate(signing, now=T + DAY)
    assert done.pruned == (k1,) and done.kept == ()
    assert [r.kid for r in load_signing_keys(signing).retired] == [k2]


def test_a_fixed_kid_cannot_rotate(tmp_path: Path) -> None:
    signing = signing_in(tmp_path, kid="mx1-2025")
    before = signing.key_file.read_bytes()
    with pytest.raises(ConfigError, match=r"\[signing\] kid: is fixed to 'mx1-2025'"):
        rotate(signing, now=T)
    assert signing.key_file.read_bytes() == before
    assert not signing.retired_keys_file.exists()


def _entry(signing: SigningConfig, **changes: object) -> dict[str, object]:
    key = load_signing_key(signing.key_file)
    jwk: dict[str, object] = {**key.as_dict(private=False), "kid": "k1", "retired_at": T}
    jwk.update(changes)
    return {k: v for k, v in jwk.items() if v is not None}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s: b"not json", "is not valid JSON"),
        (lambda s: b"[]", r"expected a JWKS"),
        (lambda s: {"keys": [{"kty": "OKP"}]}, 'key #1: needs a "kid" string'),
        (
            lambda s: {"keys": [_entry(s, d="c2VjcmV0")]},
            r"key #1 \(kid 'k1'\): holds a private key",
        ),
        (lambda s: {"keys": [_entry(s, retired_at="yesterday")]}, r"\(kid 'k1'\): \"retired_at\""),
        (lambda s: {"keys": [_entry(s, x="AAAA")]}, r"\(kid 'k1'\): not an Ed25519 public JWK"),
        (lambda s: {"keys": [_entry(s, crv="X25519")]}, r"\(kid 'k1'\): not an Ed25519"),
        (lambda s: {"keys": [_entry(s), _entry(s)]}, "kid 'k1' is listed twice"),
    ],
)
def test_a_corrupt_retired_file_is_a_config_error_naming_the_key(
    tmp_path: Path, make: Callable[[SigningConfig], object], message: str
) -> None:
    signing = signing_in(tmp_path)
    content = make(signing)
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    signing.retired_keys_file.write_bytes(raw)
    with pytest.raises(ConfigError) as e:
        load_signing_keys(signing)
    assert str(e.value).startswith(f"[signing] retired_keys_file: {signing.retired_keys_file}")
    e.match(message)
    # Rotation refuses too, rather than overwrite retired keys it cannot read.
    before = signing.key_file.read_bytes()
    with pytest.raises(ConfigError):
        rotate(signing, now=T)
    assert signing.key_file.read_bytes() == before
    assert signing.retired_keys_file.read_bytes() == raw


# --- atomicity ---


def test_a_crash_between_the_two_writes_leaves_the_old_key_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signing = signing_in(tmp_path)
    before, old_kid, old_card = signing.key_file.read_bytes(), current_kid(signing), card(signing)
    real_replace = os.replace

    def crash_on_the_key(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == signing.key_file:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomicfile.os, "replace", crash_on_the_key)
    with pytest.raises(OSError):
        rotate(signing, now=T)
    monkeypatch.undo()

    assert signing.key_file.read_bytes() == before
    assert sorted(p.name for p in signing.key_file.parent.iterdir()) == [
        "card-signing-retired.json",
        "card-signing.pem",
    ]  # no temporary file left behind
    ring = load_signing_keys(signing)
    assert ring.kid == old_kid and [r.kid for r in ring.retired] == [old_kid]
    # Listed as retired, but current: no grace period, listed once.
    assert ring.verifier().verify(old_card, now=T + 3650 * DAY)["v"] == 1
    assert kids(ring.jwks(now=T)) == [old_kid]

    done = rotate(signing, now=T + 5)  # the retry replaces the entry, no duplicate
    ring = load_signing_keys(signing)
    assert done.old_kid == old_kid
    assert [(r.kid, r.retired_at) for r in ring.retired] == [(old_kid, T + 5)]


def test_the_key_file_is_always_a_whole_key(tmp_path: Path) -> None:
    signing = signing_in(tmp_path)
    stop, failures, reads = threading.Event(), [], [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                load_signing_key(signing.key_file)
                reads[0] += 1
            except ConfigError as e:
                failures.append(str(e))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            rotate(signing, now=T + i)
    finally:
        stop.set()
        thread.join()
    assert failures == [] and reads[0] > 0
    assert len(load_signing_keys(signing).retired) == 30


def test_rotation_keeps_the_key_files_owner_and_mode(tmp_path: Path) -> None:
    signing = signing_in(tmp_path)
    os.chmod(signing.key_file, 0o640)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    os.chown(signing.key_file, *owner)
    rotate(signing, now=T)
    for path in (signing.key_file, signing.retired_keys_file):  # a new retired file: the key's
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, *owner), path


# --- configuration ---


def test_the_retired_file_defaults_beside_the_key(tmp_path: Path) -> None:
    cfg = config.load(init(tmp_path))
    assert cfg.signing.retired_keys_file == tmp_path / "keys" / "card-signing-retired.json"
    assert cfg.signing.retired_key_grace_days == 180 == cfg.milter.card_ttl_days


def _with_signing_lines(path: Path, lines: str) -> Path:
    path.write_text(path.read_text().replace("[signing]\n", f"[signing]\n{lines}\n", 1))
    return path


def test_the_retired_file_and_grace_are_configurable(tmp_path: Path) -> None:
    path = _with_signing_lines(
        init(tmp_path), 'retired_keys_file = "old/retired.json"\nretired_key_grace_days = 30'
    )
    cfg = config.load(path)
    assert cfg.signing.retired_keys_file == tmp_path / "old" / "retired.json"
    assert cfg.signing.retired_key_grace_days == 30


@pytest.mark.parametrize("days", [0, 3651])
def test_the_grace_period_is_validated(tmp_path: Path, days: int) -> None:
    path = _with_signing_lines(init(tmp_path), f"retired_key_grace_days = {days}")
    with pytest.raises(ConfigError, match=r"\[signing\] retired_key_grace_days: must be 1..3650"):
        config.load(path)


# --- the command ---


def _public_kids(path: Path, capsys: pytest.CaptureFixture[str]) -> list[object]:
    assert cli.main(["keys", "public", "--config", str(path)]) == 0
    return kids(json.loads(capsys.readouterr().out))


def test_cli_rotate_signing_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = init(tmp_path)
    (k0,) = _public_kids(path, capsys)

    assert cli.main(["keys", "rotate-signing", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    k1 = current_kid(config.load(path).signing)
    assert f"retired kid {k0}: its cards verify until " in out
    assert f"current kid {k1}: new key in {tmp_path / 'keys' / 'card-signing.pem'}" in out
    assert "the milter signs with the new key within 30 s, without a restart" in out
    assert _public_kids(path, capsys) == [k1, k0]

    assert cli.main(["keys", "rotate-signing", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    k2 = current_kid(config.load(path).signing)
    assert f"retired kid {k1}" in out and f"still verifying older kids: {k0}" in out
    assert _public_kids(path, capsys) == [k2, k0, k1]
    assert cli.main(["config", "check", "--config", str(path)]) == 0


def test_cli_rotate_signing_refuses_a_fixed_kid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_signing_lines(init(tmp_path), 'kid = "mx1-2025"')
    key_file = tmp_path / "keys" / "card-signing.pem"
    before = key_file.read_bytes()
    assert cli.main(["keys", "rotate-signing", "--config", str(path)]) == 2
    assert "config error: [signing] kid: is fixed to 'mx1-2025'" in capsys.readouterr().err
    assert key_file.read_bytes() == before


def test_cli_a_corrupt_retired_file_stops_rotation_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = init(tmp_path)
    (tmp_path / "keys" / "card-signing-retired.json").write_text('{"keys": [{"kid": "k1"}]}')
    for command in (["keys", "rotate-signing"], ["config", "check"], ["keys", "public"]):
        assert cli.main([*command, "--config", str(path)]) == 2, command
        err = capsys.readouterr().err
        assert "[signing] retired_keys_file:" in err and "(kid 'k1')" in err, err


def test_cli_rotate_signing_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["keys", "rotate-signing", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "retired_key_grace_days" in out
    assert "example: sudo inboxpay keys rotate-signing --config" in out


def test_a_symlinked_key_file_has_its_target_replaced(tmp_path: Path) -> None:
    # The old private key must not survive at the link's target.
    signing = signing_in(tmp_path)
    target = tmp_path / "elsewhere" / "card-signing.pem"
    target.parent.mkdir()
    os.replace(signing.key_file, target)
    signing.key_file.symlink_to(target)
    old_pem = target.read_bytes()
    rotate(signing)
    assert signing.key_file.is_symlink()
    assert target.read_bytes() != old_pem
    assert load_signing_key(signing.key_file) is not None
