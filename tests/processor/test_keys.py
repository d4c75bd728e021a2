"""Processor key files: private 0600 and never overwritten; the sidecar gets public keys only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from inboxpay.errors import ConfigError
from inboxpay.processor.keys import (
    generate_api_key,
    generate_processor_key,
    load_api_key,
    load_processor_key,
    load_public_jwk,
    load_public_jwk_file,
    public_jwk_of,
)


def test_generate_and_load(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "processor.jwk"
    key = generate_processor_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_processor_key(path).thumbprint() == key.thumbprint()
    with pytest.raises(FileExistsError):
        generate_processor_key(path)


def test_public_jwk_has_no_private_part(tmp_path: Path) -> None:
    path = tmp_path / "processor.jwk"
    key = generate_processor_key(path)
    jwk = public_jwk_of(path)
    assert "d" not in jwk
    assert jwk["kid"] == key.thumbprint() and jwk["alg"] == "ECDH-ES+A256KW" and jwk["use"] == "enc"
    (tmp_path / "public.jwk").write_text(json.dumps(jwk))
    assert load_public_jwk_file(tmp_path / "public.jwk", "k").thumbprint() == key.thumbprint()


def test_sidecar_refuses_a_private_key(tmp_path: Path) -> None:
    generate_processor_key(tmp_path / "processor.jwk")
    private = json.loads((tmp_path / "processor.jwk").read_text())
    with pytest.raises(ConfigError, match="private key"):
        load_public_jwk(private, "[processors.sandbox] public_key_file")


def test_bad_key_files_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "bad.jwk").write_text(
        '{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "s"}'
    )
    with pytest.raises(ConfigError) as e:
        load_processor_key(tmp_path / "bad.jwk")
    assert str(e.value).startswith("[sandbox] key_file:") and '"s"' not in str(e.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_processor_key(tmp_path / "missing.jwk")


def test_api_key(tmp_path: Path) -> None:
    api_key = generate_api_key(tmp_path / "api.key")
    assert stat.S_IMODE((tmp_path / "api.key").stat().st_mode) == 0o600
    assert load_api_key(tmp_path / "api.key") == api_key
    (tmp_path / "short.key").write_text("abc\n")
    with pytest.raises(ConfigError, match="api_key_file"):
        load_api_key(tmp_path / "short.key")
