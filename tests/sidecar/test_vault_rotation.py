"""``inboxpay keys rotate-vault`` rewraps every saved card's data key under a new KEK
version; a restarted sidecar pays with a card saved before the rotation, even once the
old version is retired."""

from __future__ import annotations

import asyncio

import pytest

from inboxpay.vault.keys import load_vault_keys, retire_kek_version

from .harness import ALICE, BOB, HOLDER, MC_OK, VISA_OK, Env
from .procs import run_cli

pytestmark = pytest.mark.asyncio


async def test_rotate_vault_then_pay_with_an_old_payment_method(env: Env) -> None:
    async with env.sidecar() as api:
        alice_method = await api.method(ALICE, VISA_OK)
        await api.method(ALICE, MC_OK)
        await api.method(BOB, VISA_OK)
    async with env.store() as store:
        before = {m[0]: m for m in await store.all_payment_method_keys()}
    assert len(before) == 3 and {m[3] for m in before.values()} == {1}

    done = await asyncio.to_thread(
        run_cli, "keys", "rotate-vault", "--config", str(env.config_path)
    )
    assert done.returncode == 0, done.stderr
    assert "version 2 active; rewrapped 3 payment methods" in done.stdout, done.stdout
    vault_file = env.config.vault_key_file
    assert load_vault_keys(vault_file).active == 2

    async with env.store() as store:
        after = {m[0]: m for m in await store.all_payment_method_keys()}
        entries = await store.audit_entries()
    assert set(after) == set(before)
    for method_id, (_, owner, wrapped, version) in after.items():
        assert version == 2, method_id
        assert owner == before[method_id][1]
        assert wrapped != before[method_id][2], "the data key was not rewrapped"
    assert any(e.action == "vault.rotate" and e.details == {"rewrapped": 3} for e in entries)

    # Nothing depends on version 1 any more: retire it, then restart the sidecar.
    retire_kek_version(vault_file, 1)
    async with env.sidecar() as api:
        listed = (await api.call("GET", "/v1/payment-methods", ALICE)).body["data"]
        assert {m["name"] for m in listed} == {HOLDER}
        paid = await api.pay(ALICE, env.card([ALICE], amount="31.41"), alice_method)
        assert (paid.status, paid.body["status"]) == (201, "succeeded"), paid
        assert paid.body["payment_method"]["id"] == alice_method
        new_method = await api.method(BOB, MC_OK)
    async with env.store() as store:
        assert (await store.get_payment_method(BOB, new_method)).kek_version == 2

    assert [c["amount_minor"] for c in await env.charges()] == [3141]
