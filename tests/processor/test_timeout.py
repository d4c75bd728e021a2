"""No double charge, no lost charge: a timed-out charge is found by its key, a retry with the
key charges nothing more, and the ledger keeps both promises across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from inboxpay.processor import ChargeResult, ProcessorClient, ProcessorTimeout
from tests.support.sandbox import Sandbox

from .helpers import Keys, card, drive, request

DELAY = 1.0
CLIENT_TIMEOUT = 0.3


def ledger_of(sandbox: Sandbox, keys: Keys) -> list[ChargeResult]:
    async def steps(c: ProcessorClient) -> list[ChargeResult]:
        return await c.ledger()

    return drive(sandbox.url, keys, steps)


def test_timeout_then_reconcile_then_retry(tmp_path: Path, keys: Keys) -> None:
    req = request()
    with Sandbox.of_keys(
        tmp_path, keys.key_file, keys.api_key, ledger=tmp_path / "ledger.db", delay=DELAY
    ) as slow:

        async def impatient(c: ProcessorClient) -> None:
            with pytest.raises(ProcessorTimeout) as e:
                await c.charge(req, card())
            assert e.value.reason == "timeout"

        drive(slow.url, keys, impatient, timeout=CLIENT_TIMEOUT)

        # The reconciler's path: the money moved although the answer never came. It polls,
        # as a reconciler runs later: on a loaded machine the write may trail the timeout.
        async def reconcile(c: ProcessorClient) -> ChargeResult | None:
            for _ in range(100):
                found = await c.find(req.idempotency_key)
                if found is not None:
                    return found
                await asyncio.sleep(0.05)
            return None

        found = drive(slow.url, keys, reconcile)
        assert found is not None and found.status == "succeeded"

        # A retry with the same key (the card sealed afresh) is the same charge.
        async def retry(c: ProcessorClient) -> ChargeResult:
            return await c.charge(req, card())

        assert drive(slow.url, keys, retry, timeout=DELAY + 5) == found
        assert [c.id for c in ledger_of(slow, keys)] == [found.id]


def test_idempotency_survives_a_restart(tmp_path: Path, keys: Keys) -> None:
    req = request()

    async def pay(c: ProcessorClient) -> ChargeResult:
        return await c.charge(req, card())

    with Sandbox.of_keys(tmp_path, keys.key_file, keys.api_key, ledger=tmp_path / "l.db") as first:
        charged = drive(first.url, keys, pay)
    with Sandbox.of_keys(tmp_path, keys.key_file, keys.api_key, ledger=tmp_path / "l.db") as again:
        assert drive(again.url, keys, pay) == charged
        assert [c.id for c in ledger_of(again, keys)] == [charged.id]
