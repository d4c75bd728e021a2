"""A key pair and one sandbox processor process shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inboxpay.processor.keys import (
    generate_api_key,
    generate_processor_key,
    load_public_jwk,
    public_jwk_of,
)
from tests.support.sandbox import Sandbox

from .helpers import Keys


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    root = tmp_path_factory.mktemp("processor-keys")
    generate_processor_key(root / "processor.jwk")
    return Keys(
        key_file=root / "processor.jwk",
        api_key=generate_api_key(root / "api.key"),
        public_key=load_public_jwk(public_jwk_of(root / "processor.jwk"), "test"),
    )


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("sandbox")
    with Sandbox.of_keys(root, keys.key_file, keys.api_key, ledger=root / "ledger.db") as proc:
        yield proc
