"""When the processor or the database is in trouble: a clean 503 and nothing charged, a retry
with the same key that succeeds, a timed-out charge settled by the reconciler exactly
once, and a database that cannot be reached at start-up or disappears later."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from store.pg import free_port, fresh_database

from inboxpay.processor.client import open_processor
from inboxpay.sidecar.settle import Settler
from inboxpay.store.model import StoreError
from tests.support.sandbox import Sandbox

from .harness import ALICE, Env, new_key
from .procs import run_cli

pytestmark = pytest.mark.asyncio

PROCESSOR_TIMEOUT = 0.5
SANDBOX_DELAY = 3.0
RECONCILE_AFTER = 5  # the smallest the config allows


def _uncounted(status: str) -> None:
    pass


async def test_processor_down_then_retry_with_the_same_key(own_env: Env) -> None:
    env = own_env
    env.sandbox.start()
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        card = env.card([ALICE], amount="64.00")
        assert (await api.call("GET", "/readyz")).status == 200

        env.sandbox.stop()
        key = new_key()
        down = await api.pay(ALICE, card, method_id, key=key)
        assert (down.status, down.code) == (503, "processor_unavailable"), down
        ready = await api.call("GET", "/readyz")
        assert (ready.status, ready.code) == (503, "processor_unavailable"), ready
        # Nothing holds the invoice: the failed attempt is a record, not a payment.
        assert (await api.verify(ALICE, card)).body["status"] == "payable"
        history = (await api.call("GET", "/v1/payments", ALICE)).body["data"]
        assert [(p["status"], p["decline_reason"]) for p in history] == [
            ("failed", "processor_unavailable")
        ]

        env.sandbox.start()
        assert await env.charges() == []
        retry = await api.pay(ALICE, card, method_id, key=key)
        assert (retry.status, retry.body["status"]) == (201, "succeeded"), retry
        replay = await api.pay(ALICE, card, method_id, key=key)
        assert (replay.status, replay.body) == (201, retry.body)
        assert (await api.call("GET", "/readyz")).status == 200

    assert [c["amount_minor"] for c in await env.charges()] == [6400]


async def test_processor_timeout_left_pending_then_reconciled(own_env: Env) -> None:
    env = own_env

    def slow_settings(data: dict[str, Any]) -> None:
        data["processors"]["sandbox"]["timeout"] = PROCESSOR_TIMEOUT
        data["sidecar"]["reconcile_after"] = RECONCILE_AFTER

    env.edit(slow_settings)
    # The same sandbox (keys, port, ledger), answering each charge SANDBOX_DELAY s late.
    env.sandbox = Sandbox.of_config(
        env.config_path, env.root / "slow-sandbox.log", delay=SANDBOX_DELAY
    )
    env.sandbox.start()
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        card = env.card([ALICE], amount="1500.00")
        r = await api.pay(ALICE, card, method_id)
        assert (r.status, r.body["status"]) == (201, "pending"), r
        payment_id = r.body["id"]
        store = api.services.store
        created = (await store.get_payment_any_owner(payment_id)).updated_at

        # In between: the invoice is held, another attempt is refused, nothing reconciled yet.
        assert (await api.verify(ALICE, card)).body["status"] == "processing"
        again = await api.pay(ALICE, card, method_id)
        assert (again.status, again.code) == (409, "already_paid"), again
        assert await api.services.payments.reconcile_once() == 0
        assert (await store.get_payment_any_owner(payment_id)).status == "pending"

        # Once the payment is older than reconcile_after, the reconciler settles it by key:
        # the reconciler's code (Settler) on the app's store, its clock moved past
        # reconcile_after instead of the test waiting that long. The sandbox writes the
        # charge before holding its answer back; on a loaded machine the write may trail
        # the sidecar's timeout, so first wait for that state (never for a time).
        for _ in range(200):
            if await env.charges():
                break
            await asyncio.sleep(0.05)
        stale = created + datetime.timedelta(seconds=RECONCILE_AFTER + 0.3)
        processor = await open_processor(env.config.processors["sandbox"])
        try:
            later = Settler(
                store, {"sandbox": processor}, RECONCILE_AFTER, _uncounted, lambda: stale
            )
            changed = await later.reconcile_once()
        finally:
            await processor.close()
        settled = await store.get_payment_any_owner(payment_id)
        # (The app's own reconciler task may have been first; either way it was a reconciler.)
        assert changed in (0, 1)
        assert settled.status == "succeeded"
        assert settled.processor_ref.startswith("ch_")

        receipt = await api.payment(ALICE, payment_id)
        assert (receipt.status, receipt.body["status"]) == (200, "succeeded")
        assert (await api.verify(ALICE, card)).body["status"] == "paid"
        assert (await api.pay(ALICE, card, method_id)).code == "already_paid"
        assert await api.services.payments.reconcile_once() == 0

    charges = await env.charges()
    assert [(c["amount_minor"], c["id"]) for c in charges] == [(150000, settled.processor_ref)]


async def test_unreachable_database_stops_startup(tmp_path: Path, shared_sandbox: Sandbox) -> None:
    url = f"postgresql://inboxpay:s3cret-pw@127.0.0.1:{free_port()}/inboxpay"
    env = await Env.create(tmp_path, url, shared_sandbox)

    done = await asyncio.to_thread(run_cli, "sidecar", "--config", str(env.config_path))
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    message = done.stderr.strip()
    assert message.startswith("inboxpay: cannot reach PostgreSQL at "), message
    assert "127.0.0.1" in message and "s3cret-pw" not in message
    assert len(message.splitlines()) == 1, message

    # The application itself refuses to start (as an embedding server would see it).
    with pytest.raises(StoreError, match="cannot reach PostgreSQL") as e:
        async with env.sidecar():
            pass
    assert "s3cret-pw" not in str(e.value)


async def test_database_disappears_under_a_running_app(
    tmp_path: Path, pg_dsn: str, shared_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    async with fresh_database(pg_dsn) as url:
        env = await Env.create(tmp_path, url, shared_sandbox)
        async with env.sidecar() as api:
            method_id = await api.method(ALICE)
            assert (await api.call("GET", "/readyz")).status == 200

            admin = await asyncpg.connect(pg_dsn)
            try:
                name = url.rsplit("/", 1)[1]
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            finally:
                await admin.close()

            for _ in range(3):  # the pool notices on first use; every answer stays clean
                ready = await api.call("GET", "/readyz")
                assert (ready.status, ready.code) == (503, "store_unavailable"), ready
            for method, path in (
                ("GET", "/v1/payment-methods"),
                ("GET", f"/v1/payment-methods/{method_id}"),
                ("GET", "/v1/payments"),
            ):
                r = await api.call(method, path, ALICE)
                assert (r.status, r.code) == (503, "store_unavailable"), (path, r)
            r = await api.pay(ALICE, env.card([ALICE]), method_id)
            assert (r.status, r.code) == (503, "store_unavailable"), r
            assert (await api.call("GET", "/healthz")).status == 200
    assert await env.charges() == []
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("inboxpay")]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
