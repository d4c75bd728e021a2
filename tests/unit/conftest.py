"""Fixtures for the message-path tests: a Xero DKIM key with its DNS table, a card signer."""

from __future__ import annotations

import pytest

from inboxpay.card.header import CardSigner
from inboxpay.dns import StaticResolver
from tests.support.pipeline import new_dkim_key, new_signer, xero_resolver


@pytest.fixture(scope="module")
def dkim_key() -> tuple[bytes, bytes]:
    return new_dkim_key()


@pytest.fixture(scope="module")
def signer() -> CardSigner:
    return new_signer()


@pytest.fixture
def resolver(dkim_key: tuple[bytes, bytes]) -> StaticResolver:
    return xero_resolver(dkim_key)
