"""What /metrics says about the vault and the processors after payments."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inboxpay.vault import VaultError

from .harness import ALICE, Api, Env

pytestmark = pytest.mark.asyncio


async def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = await api.call("GET", "/metrics")
    assert reply.status == 200, reply
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def vault(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], op: str, result: str
) -> float:
    return sample(samples, "inboxpay_sidecar_vault_operations_total", op=op, result=result)


def processor(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], operation: str, outcome: str
) -> float:
    return sample(
        samples,
        "inboxpay_sidecar_processor_seconds_count",
        processor="sandbox",
        operation=operation,
        outcome=outcome,
    )


async def test_vault_and_processor_after_a_payment(env: Env) -> None:
    async with env.sidecar() as api:
        before = await scrape(api)
        assert vault(before, "seal", "ok") == 0 and vault(before, "open", "error") == 0

        method_id = await api.method(ALICE)  # seals the number and holder name
        card = env.card([ALICE], amount="9.00", number="INV-METRICS-1")
        paid = await api.pay(ALICE, card, method_id)  # opens them for the processor
        assert paid.body["status"] == "succeeded", paid
        listed = await api.call("GET", "/v1/payment-methods", ALICE)  # opens the holder name
        assert listed.status == 200, listed
        assert (await api.call("GET", "/readyz")).status == 200  # pings the processor

        # A record that no longer opens (altered in the database) is counted as an error.
        async with env.store() as store:
            method = await store.get_payment_method(ALICE, method_id)
        altered = dataclasses.replace(method, wrapped_key=bytes(len(method.wrapped_key)))
        with pytest.raises(VaultError):
            api.services.wallet.secret(altered)

        after = await scrape(api)

    assert vault(after, "seal", "ok") == 1
    assert vault(after, "seal", "error") == 0
    assert vault(after, "open", "ok") == 2
    assert vault(after, "open", "error") == 1
    assert processor(after, "charge", "ok") == 1
    assert processor(after, "ping", "ok") >= 1
    assert (
        sample(
            after,
            "inboxpay_sidecar_processor_seconds_sum",
            processor="sandbox",
            operation="charge",
            outcome="ok",
        )
        > 0
    )
    assert sample(after, "inboxpay_sidecar_payments_total", status="succeeded") == 1


async def test_an_unreachable_processor_is_measured_as_such(own_env: Env) -> None:
    env = own_env  # its sandbox is never started: nothing listens on its port
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        card = env.card([ALICE], amount="5.00", number="INV-METRICS-2")
        down = await api.pay(ALICE, card, method_id)
        assert (down.status, down.code) == (503, "processor_unavailable"), down
        after = await scrape(api)
    assert processor(after, "charge", "unavailable") == 1
    assert processor(after, "charge", "ok") == 0
