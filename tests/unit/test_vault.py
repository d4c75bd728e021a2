"""The card vault: envelope encryption, AAD binding, KEK rotation, the key file, fingerprints."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from inboxpay.errors import ConfigError
from inboxpay.vault import VaultError
from inboxpay.vault.envelope import Sealed, Vault
from inboxpay.vault.keys import (
    FORMAT,
    VaultKeys,
    add_kek_version,
    generate_vault_keys,
    load_vault_keys,
    retire_kek_version,
)
from inboxpay.vault.paymentcard import CardDataError

NUMBER = "4242424242424242"
NAME = "Ada Lovelace"
SECRET = {"number": NUMBER, "name": NAME}
ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "vault.json"
    generate_vault_keys(path)
    return path


@pytest.fixture
def vault(key_file: Path) -> Vault:
    return Vault(load_vault_keys(key_file))


def key_material(path: Path) -> list[str]:
    """Every key in the file, base64 and raw, to look for in places it must not be."""
    raw = json.loads(path.read_text())
    b64 = [k["key"] for k in raw["keks"].values()] + [raw["fingerprint_key"]]
    return b64 + [base64.b64decode(k).hex() for k in b64]


def error_texts(err: BaseException) -> list[str]:
    texts = []
    current: BaseException | None = err
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return texts


def assert_clean(err: BaseException, *secrets: str) -> None:
    for text in error_texts(err):
        for secret in secrets:
            assert secret not in text


def rewrite(path: Path, change: Any) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


# --- seal and open ---


def test_round_trip(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    assert isinstance(box, Sealed) and box.kek_version == 1
    assert len(box.wrapped_key) == 12 + 32 + 16
    assert vault.open("pm_1", ALICE, box.sealed, box.wrapped_key, box.kek_version) == SECRET


def test_each_record_gets_its_own_data_key_and_nonce(vault: Vault) -> None:
    a = vault.seal("pm_1", ALICE, SECRET)
    b = vault.seal("pm_1", ALICE, SECRET)
    assert a.sealed != b.sealed and a.wrapped_key != b.wrapped_key


def test_plaintext_is_not_in_the_ciphertexts(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    for blob in (box.sealed, box.wrapped_key, repr(box).encode()):
        for text in (NUMBER, NAME, NUMBER[-8:], "number"):
            assert text.encode() not in blob
            assert text.encode("utf-16-le") not in blob


def test_non_ascii_holder_name_round_trips(vault: Vault) -> None:
    secret = {"number": NUMBER, "name": "Zoë Ñúñez 山田"}
    box = vault.seal("pm_1", ALICE, secret)
    assert vault.open("pm_1", ALICE, box.sealed, box.wrapped_key, 1) == secret


def test_open_with_another_owner_fails(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    for owner in (BOB, ALICE.upper(), ALICE + " "):
        with pytest.raises(VaultError):
            vault.open("pm_1", owner, box.sealed, box.wrapped_key, 1)


def test_open_with_another_record_id_fails(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    with pytest.raises(VaultError):
        vault.open("pm_2", ALICE, box.sealed, box.wrapped_key, 1)


def test_fields_cannot_shift_between_record_id_and_owner(vault: Vault) -> None:
    box = vault.seal("pm_1a", "lice@example.com", SECRET)
    with pytest.raises(VaultError):
        vault.open("pm_1", "alice@example.com", box.sealed, box.wrapped_key, 1)


def test_swapping_sealed_blobs_between_records_fails(vault: Vault) -> None:
    a = vault.seal("pm_1", ALICE, SECRET)
    b = vault.seal("pm_2", ALICE, {"number": "5555555555554444", "name": "B"})
    with pytest.raises(VaultError):
        vault.open("pm_1", ALICE, b.sealed, a.wrapped_key, 1)
    # Moving a whole row (both blobs) to another id or owner fails too.
    with pytest.raises(VaultError):
        vault.open("pm_1", ALICE, b.sealed, b.wrapped_key, 1)
    c = vault.seal("pm_1", BOB, {"number": "5555555555554444", "name": "B"})
    with pytest.raises(VaultError):
        vault.open("pm_1", ALICE, c.sealed, c.wrapped_key, 1)


def test_wrapped_key_cannot_pose_as_sealed_data(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    with pytest.raises(VaultError):
        vault.open("pm_1", ALICE, box.wrapped_key, box.wrapped_key, 1)


@pytest.mark.parametrize("which", ["sealed", "wrapped_key"])
def test_every_tampered_byte_is_detected(vault: Vault, which: str) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    blob = getattr(box, which)
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        args = {"sealed": box.sealed, "wrapped_key": box.wrapped_key, which: bytes(bad)}
        with pytest.raises(VaultError) as e:
            vault.open("pm_1", ALICE, args["sealed"], args["wrapped_key"], 1)
        assert_clean(e.value, NUMBER, NAME)


@pytest.mark.parametrize("cut", [b"", b"x" * 27, None])
def test_truncated_blobs_are_refused(vault: Vault, cut: bytes | None) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    sealed = box.sealed[:-1] if cut is None else cut
    with pytest.raises(VaultError):
        vault.open("pm_1", ALICE, sealed, box.wrapped_key, 1)
    with pytest.raises(VaultError):
        vault.open("pm_1", ALICE, box.sealed, box.wrapped_key[:-1], 1)


def test_unknown_version_is_refused(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    for version in (2, 0, -1, True):
        with pytest.raises(VaultError, match="unknown KEK version"):
            vault.open("pm_1", ALICE, box.sealed, box.wrapped_key, version)


def test_empty_record_id_or_owner_is_refused(vault: Vault) -> None:
    with pytest.raises(VaultError):
        vault.seal("", ALICE, SECRET)
    with pytest.raises(VaultError):
        vault.seal("pm_1", "", SECRET)


@pytest.mark.parametrize("field", ["cvc", "CVV", "cvc2", "security_code", "Security-Code", "cid"])
def test_security_code_is_never_sealed(vault: Vault, field: str) -> None:
    with pytest.raises(VaultError, match="security code") as e:
        vault.seal("pm_1", ALICE, {"number": NUMBER, field: "123"})
    assert_clean(e.value, NUMBER, "123")


def test_secret_must_be_strings(vault: Vault) -> None:
    with pytest.raises(VaultError):
        vault.seal("pm_1", ALICE, {"number": 4242424242424242})  # type: ignore[dict-item]


def test_error_messages_carry_no_key_or_plaintext(key_file: Path, vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    other = vault.seal("pm_2", BOB, SECRET)
    errors: list[BaseException] = []
    attempts = [
        ("pm_1", BOB, box.sealed, box.wrapped_key, 1),
        ("pm_2", ALICE, box.sealed, box.wrapped_key, 1),
        ("pm_1", ALICE, other.sealed, box.wrapped_key, 1),
        ("pm_1", ALICE, box.sealed, other.wrapped_key, 1),
        ("pm_1", ALICE, box.sealed[:-2], box.wrapped_key, 1),
        ("pm_1", ALICE, box.sealed, box.wrapped_key, 9),
    ]
    for record_id, owner, sealed, wrapped, version in attempts:
        with pytest.raises(VaultError) as e:
            vault.open(record_id, owner, sealed, wrapped, version)
        errors.append(e.value)
    with pytest.raises(VaultError) as e:
        vault.rewrap("pm_1", BOB, box.wrapped_key, 1)
    errors.append(e.value)
    secrets = [NUMBER, NAME, NUMBER[-8:], *key_material(key_file)]
    for err in errors:
        assert_clean(err, *secrets)


def test_vault_keys_repr_hides_keys(key_file: Path) -> None:
    ring = load_vault_keys(key_file)
    text = repr(ring) + repr(Vault(ring).__dict__)
    for secret in key_material(key_file):
        assert secret not in text
    assert repr(ring.fingerprint_key) not in text
    assert repr(ring.keks[1].key) not in text


def test_vault_keeps_no_plaintext(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    vault.open("pm_1", ALICE, box.sealed, box.wrapped_key, 1)
    assert set(vars(vault)) == {"_keys"}


# --- rotation ---


def test_rotation_rewraps_without_touching_sealed(key_file: Path) -> None:
    old = Vault(load_vault_keys(key_file))
    boxes = {f"pm_{i}": old.seal(f"pm_{i}", ALICE, SECRET) for i in range(3)}

    assert add_kek_version(key_file) == 2
    vault = Vault(load_vault_keys(key_file))
    assert vault.active_version == 2

    # Before the rewrap, old records still open under version 1.
    for rid, box in boxes.items():
        assert box.kek_version == 1
        assert vault.open(rid, ALICE, box.sealed, box.wrapped_key, 1) == SECRET

    for rid, box in boxes.items():
        wrapped, version = vault.rewrap(rid, ALICE, box.wrapped_key, box.kek_version)
        assert version == 2 and wrapped != box.wrapped_key
        assert vault.open(rid, ALICE, box.sealed, wrapped, version) == SECRET
        # The new wrapping is bound to the new version: it does not pass as version 1.
        with pytest.raises(VaultError):
            vault.open(rid, ALICE, box.sealed, wrapped, 1)

    # New records use the new version.
    assert vault.seal("pm_new", ALICE, SECRET).kek_version == 2


def test_rewrap_keeps_the_binding(vault: Vault, key_file: Path) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    add_kek_version(key_file)
    vault = Vault(load_vault_keys(key_file))
    with pytest.raises(VaultError):
        vault.rewrap("pm_1", BOB, box.wrapped_key, 1)
    wrapped, version = vault.rewrap("pm_1", ALICE, box.wrapped_key, 1)
    with pytest.raises(VaultError):
        vault.open("pm_1", BOB, box.sealed, wrapped, version)


def test_rewrap_at_the_active_version_is_a_checked_no_op(vault: Vault) -> None:
    box = vault.seal("pm_1", ALICE, SECRET)
    assert vault.rewrap("pm_1", ALICE, box.wrapped_key, 1) == (box.wrapped_key, 1)
    with pytest.raises(VaultError):
        vault.rewrap("pm_1", ALICE, box.wrapped_key[:-1] + b"\x00", 1)


def test_retired_version_refuses(key_file: Path) -> None:
    box = Vault(load_vault_keys(key_file)).seal("pm_1", ALICE, SECRET)
    add_kek_version(key_file)
    retire_kek_version(key_file, 1)
    retire_kek_version(key_file, 1)  # idempotent
    vault = Vault(load_vault_keys(key_file))
    assert load_vault_keys(key_file).keks[1].retired
    with pytest.raises(VaultError, match="retired"):
        vault.open("pm_1", ALICE, box.sealed, box.wrapped_key, 1)
    with pytest.raises(VaultError, match="retired"):
        vault.rewrap("pm_1", ALICE, box.wrapped_key, 1)


def test_active_version_cannot_be_retired(key_file: Path) -> None:
    with pytest.raises(VaultError, match="active"):
        retire_kek_version(key_file, 1)
    with pytest.raises(VaultError, match="does not exist"):
        retire_kek_version(key_file, 7)
    assert not load_vault_keys(key_file).keks[1].retired


def test_rotation_keeps_keys_mode_and_other_fields(key_file: Path) -> None:
    rewrite(key_file, lambda raw: raw.update(comment="kept"))
    key_file.chmod(0o600)
    before = json.loads(key_file.read_text())
    add_kek_version(key_file)
    add_kek_version(key_file)
    after = json.loads(key_file.read_text())
    assert after["active"] == 3 and set(after["keks"]) == {"1", "2", "3"}
    assert after["keks"]["1"] == before["keks"]["1"]
    assert after["fingerprint_key"] == before["fingerprint_key"]
    assert after["comment"] == "kept"
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert [p.name for p in key_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_version_numbers_are_never_reused(key_file: Path) -> None:
    add_kek_version(key_file)
    retire_kek_version(key_file, 1)
    assert add_kek_version(key_file) == 3


# --- the key file ---


def test_generated_key_file(key_file: Path) -> None:
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    raw = json.loads(key_file.read_text())
    assert raw["format"] == FORMAT == "inboxpay-vault-1"
    assert raw["active"] == 1 and raw["keks"]["1"]["retired"] is False
    assert len(base64.b64decode(raw["keks"]["1"]["key"])) == 32
    assert len(base64.b64decode(raw["fingerprint_key"])) == 32
    ring = load_vault_keys(key_file)
    assert isinstance(ring, VaultKeys) and ring.active == 1


def test_generate_refuses_to_overwrite(key_file: Path) -> None:
    before = key_file.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        generate_vault_keys(key_file)
    assert key_file.read_bytes() == before


def test_loose_permissions_are_refused(key_file: Path) -> None:
    for mode in (0o640, 0o604, 0o644):
        key_file.chmod(mode)
        with pytest.raises(ConfigError, match=r"^\[vault\] key_file: .*must be 0600"):
            load_vault_keys(key_file)
    key_file.chmod(0o400)
    load_vault_keys(key_file)


def test_missing_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^\[sidecar\] vault_key: cannot read"):
        load_vault_keys(tmp_path / "nope.json", key_name="[sidecar] vault_key")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^\[vault\] key_file: .*not a regular file"):
        load_vault_keys(tmp_path)


def short_key(raw: dict[str, Any]) -> None:
    raw["keks"]["1"]["key"] = base64.b64encode(b"k" * 16).decode()


def long_key(raw: dict[str, Any]) -> None:
    raw["keks"]["1"]["key"] = base64.b64encode(b"k" * 48).decode()


def short_fingerprint_key(raw: dict[str, Any]) -> None:
    raw["fingerprint_key"] = base64.b64encode(b"k" * 31).decode()


def retired_active(raw: dict[str, Any]) -> None:
    raw["keks"]["1"]["retired"] = True


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda raw: raw.update(format="inboxpay-vault-2"), '"format"'),
        (lambda raw: raw.pop("format"), '"format"'),
        (lambda raw: raw.update(active=2), '"active"'),
        (lambda raw: raw.update(active="1"), '"active"'),
        (lambda raw: raw.update(active=True), '"active"'),
        (lambda raw: raw.update(keks={}), '"keks"'),
        (lambda raw: raw.update(keks=[]), '"keks"'),
        (lambda raw: raw["keks"].update({"01": raw["keks"]["1"]}), '"keks" names'),
        (lambda raw: raw["keks"].update({"x": {}}), '"keks" names'),
        (short_key, r'"keks"\."1"\."key" must be base64 of 32 bytes'),
        (long_key, r'"keks"\."1"\."key" must be base64 of 32 bytes'),
        (lambda raw: raw["keks"]["1"].update(key="not base64!"), r'"keks"\."1"\."key"'),
        (lambda raw: raw["keks"]["1"].pop("key"), r'"keks"\."1"\."key"'),
        (lambda raw: raw["keks"]["1"].update(retired="no"), '"retired"'),
        (lambda raw: raw["keks"]["1"].pop("created"), '"created"'),
        (retired_active, "retired"),
        (short_fingerprint_key, '"fingerprint_key"'),
        (lambda raw: raw.pop("fingerprint_key"), '"fingerprint_key"'),
    ],
)
def test_format_errors_name_the_key(key_file: Path, change: Any, pattern: str) -> None:
    secrets = key_material(key_file)
    rewrite(key_file, change)
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match=r"^\[vault\] key_file: ") as e:
        load_vault_keys(key_file)
    assert e.match(pattern)
    assert_clean(e.value, *secrets)


@pytest.mark.parametrize("text", ["", "{", "[]", '"x"', "\xff"])
def test_bad_json_names_the_key_and_hides_the_document(key_file: Path, text: str) -> None:
    secrets = key_material(key_file)
    # The document's keys are in the file; a broken tail must not pull them into the error.
    key_file.write_bytes(key_file.read_bytes()[:-5] + text.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^\[vault\] key_file: ") as e:
        load_vault_keys(key_file)
    assert_clean(e.value, *secrets)
    assert e.value.__cause__ is None and e.value.__context__ is None


def test_add_version_checks_the_file_first(key_file: Path) -> None:
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        add_kek_version(key_file)
    key_file.chmod(0o600)
    assert load_vault_keys(key_file).active == 1


# --- fingerprints ---


def test_fingerprint_is_stable_and_normalized(vault: Vault) -> None:
    fp = vault.fingerprint(ALICE, NUMBER)
    assert fp == vault.fingerprint(" Alice@Example.COM ", "4242 4242-4242 4242")
    assert len(fp) == 43 and "=" not in fp
    assert NUMBER not in fp and NUMBER[-4:] not in fp


def test_fingerprint_is_scoped_to_the_owner(vault: Vault) -> None:
    assert vault.fingerprint(ALICE, NUMBER) != vault.fingerprint(BOB, NUMBER)
    assert vault.fingerprint(ALICE, NUMBER) != vault.fingerprint(ALICE, "5555555555554444")


def test_fingerprint_is_keyed(tmp_path: Path, vault: Vault) -> None:
    other = Vault(generate_vault_keys(tmp_path / "other.json"))
    assert vault.fingerprint(ALICE, NUMBER) != other.fingerprint(ALICE, NUMBER)


def test_fingerprint_survives_kek_rotation(key_file: Path, vault: Vault) -> None:
    fp = vault.fingerprint(ALICE, NUMBER)
    add_kek_version(key_file)
    assert Vault(load_vault_keys(key_file)).fingerprint(ALICE, NUMBER) == fp


def test_fingerprint_refuses_garbage_without_echoing_it(vault: Vault) -> None:
    with pytest.raises(CardDataError) as e:
        vault.fingerprint(ALICE, NUMBER + "x")
    assert_clean(e.value, NUMBER)
