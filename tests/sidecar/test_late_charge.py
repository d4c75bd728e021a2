"""A charge request that reaches the processor late is never a second charge.

The sandbox holds every charge request it receives until the test opens its gate:
the sidecar times out, the reconciler finds no charge under the key and marks the payment
failed/not_received, which frees the invoice. The processor key is one per invoice
payment, so a retry sends the same key and the processor makes one charge of the two
requests; and a late charge with no retry is attached to the payment that made it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.support.sandbox import Sandbox

from .harness import ALICE, MC_OK, VISA_OK, Api, Env

pytestmark = pytest.mark.asyncio

PROCESSOR_TIMEOUT = 0.5
RECONCILE_AFTER = 5  # the smallest the config allows


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for a state, never for a time: the cap only stops a broken test hanging."""
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def late_sandbox(env: Env) -> None:
    def settings(data: dict[str, Any]) -> None:
        data["processors"]["sandbox"]["timeout"] = PROCESSOR_TIMEOUT
        data["sidecar"]["reconcile_after"] = RECONCILE_AFTER

    env.edit(settings)
    env.sandbox = Sandbox.of_config(
        env.config_path, env.root / "late-sandbox.log", gate=env.root / "gate"
    )
    env.sandbox.start()


def open_gate(env: Env) -> None:
    (env.root / "gate").touch()


async def pending_then_not_received(api: Api, card: str, method: str) -> str:
    r = await api.pay(ALICE, card, method)
    assert (r.status, r.body["status"]) == (201, "pending"), r
    payment_id = str(r.body["id"])
    store = api.services.store

    async def not_received() -> bool:
        await api.services.payments.reconcile_once()
        p = await store.get_payment_any_owner(payment_id)
        return (p.status, p.decline_reason) == ("failed", "not_received")

    await until(not_received, "the reconciler gives the first request up")
    assert (await api.verify(ALICE, card)).body["status"] == "payable"
    return payment_id


async def test_a_retry_after_not_received_is_the_same_charge(own_env: Env) -> None:
    env = own_env
    late_sandbox(env)
    async with env.sidecar() as api:
        method = await api.method(ALICE, VISA_OK)
        card = env.card([ALICE], amount="1500.00")
        first = await pending_then_not_received(api, card, method)

        retry = await api.pay(ALICE, card, method)
        assert (retry.status, retry.body["status"]) == (201, "pending"), retry
        # Both requests now reach the processor, the first one late.
        open_gate(env)

        async def both_answered() -> bool:
            return env.sandbox.charge_requests_done() == 2

        await until(both_answered, "the sandbox answers both charge requests")

        async def settled() -> bool:
            return (await api.payment(ALICE, retry.body["id"])).body["status"] == "succeeded"

        await until(settled, "the retry settles")
        assert (await api.verify(ALICE, card)).body["status"] == "paid"
        assert (await api.payment(ALICE, first)).body["status"] == "failed"

    charges = await env.charges()
    assert [c["amount_minor"] for c in charges] == [150000], charges


async def test_a_late_charge_without_a_retry_is_attached_to_its_payment(own_env: Env) -> None:
    env = own_env
    late_sandbox(env)
    async with env.sidecar() as api:
        visa, mastercard = await api.method(ALICE, VISA_OK), await api.method(ALICE, MC_OK)
        card = env.card([ALICE], amount="77.00")
        first = await pending_then_not_received(api, card, visa)
        open_gate(env)

        async def answered() -> bool:
            return env.sandbox.charge_requests_done() == 1

        await until(answered, "the sandbox answers the late request")
        # Another card now: the processor has a charge under the invoice's key, so this
        # is the invoice already paid, not a second charge.
        other = await api.pay(ALICE, card, mastercard)
        assert (other.status, other.code) == (409, "already_paid"), other

        async def attached() -> bool:
            await api.services.payments.reconcile_once()
            return (await api.payment(ALICE, first)).body["status"] == "succeeded"

        await until(attached, "the late charge is attached to the first payment")
        review = (await api.verify(ALICE, card)).body
        assert (review["status"], review["payment"]["id"]) == ("paid", first), review

    charges = await env.charges()
    assert [(c["amount_minor"], c["idempotency_key"]) for c in charges] == [
        (7700, charges[0]["idempotency_key"])
    ], charges
    assert len(charges) == 1
