"""From config tables to a running adapter and sandbox settings."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from inboxpay.errors import ConfigError
from inboxpay.processor.client import open_processor
from inboxpay.processor.keys import public_jwk_of
from inboxpay.processor.protocol import ChargeStatus
from inboxpay.processor.sandbox.settings import settings_from_config
from tests.support.sandbox import Sandbox

from .helpers import Keys, card, request


@dataclass(frozen=True)
class ProcessorTable:  # the shape of a [processors.NAME] table
    name: str
    url: str
    public_key_file: Path
    api_key_file: Path
    timeout: float = 5.0


@dataclass(frozen=True)
class SandboxTable:  # the shape of the [sandbox] table
    host: str
    port: int
    key_file: Path
    api_key_file: Path
    ledger: Path
    public_url: str


def test_open_processor_charges_and_closes(tmp_path: Path, sandbox: Sandbox, keys: Keys) -> None:
    (tmp_path / "public.jwk").write_text(json.dumps(public_jwk_of(keys.key_file)))
    (tmp_path / "api.key").write_text(keys.api_key + "\n")
    table = ProcessorTable("sandbox", sandbox.url, tmp_path / "public.jwk", tmp_path / "api.key")

    async def go() -> None:
        processor = await open_processor(table)
        try:
            await processor.ping()
            assert (await processor.charge(request(), card())).status is ChargeStatus.SUCCEEDED
        finally:
            await processor.close()

    asyncio.run(go())


def test_open_processor_refuses_the_private_key(tmp_path: Path, keys: Keys) -> None:
    (tmp_path / "api.key").write_text(keys.api_key + "\n")
    table = ProcessorTable("sandbox", "http://127.0.0.1:1", keys.key_file, tmp_path / "api.key")
    with pytest.raises(ConfigError, match=r"^\[processors\.sandbox\] public_key_file: "):
        asyncio.run(open_processor(table))


def test_settings_from_config(tmp_path: Path, keys: Keys) -> None:
    (tmp_path / "api.key").write_text(keys.api_key + "\n")
    table = SandboxTable(
        "::1", 8090, keys.key_file, tmp_path / "api.key", tmp_path / "l.db", "http://[::1]:8090"
    )
    settings = settings_from_config(table)
    assert settings.listen == "[::1]:8090" and settings.api_key == keys.api_key
    assert keys.api_key not in repr(settings)
    (tmp_path / "api.key").write_text("short\n")
    with pytest.raises(ConfigError, match=r"^\[sandbox\] api_key_file: "):
        settings_from_config(table)
