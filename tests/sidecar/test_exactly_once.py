"""Exactly once: idempotent replays, one payment per invoice whoever pays it, and a burst of
concurrent payments (two sidecar processes on one PostgreSQL; one app on SQLite) that
charges the card exactly once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from store.pg import fresh_database

from tests.support.sandbox import Sandbox

from .harness import ALICE, BOB, MC_OK, VISA_OK, Api, Env, Reply, new_key, two_sidecars
from .leaks import assert_no_secrets

pytestmark = pytest.mark.asyncio


async def test_replay_mismatch_and_second_payer(env: Env) -> None:
    async with env.sidecar() as api:
        alice_visa = await api.method(ALICE, VISA_OK)
        alice_mc = await api.method(ALICE, MC_OK)
        bob_visa = await api.method(BOB, VISA_OK)
        card = env.card([ALICE, BOB], amount="410.00")
        key = new_key()

        first = await api.pay(ALICE, card, alice_visa, key=key)
        assert (first.status, first.body["status"]) == (201, "succeeded"), first
        replay = await api.pay(ALICE, card, alice_visa, key=key)
        assert replay.status == first.status
        assert replay.body == first.body
        assert json.loads(replay.text) == json.loads(first.text)

        # The same key with another request: refused, nothing charged.
        other = await api.pay(ALICE, card, alice_mc, key=key)
        assert (other.status, other.code) == (422, "idempotency_mismatch"), other
        other = await api.pay(ALICE, env.card([ALICE]), alice_visa, key=key)
        assert (other.status, other.code) == (422, "idempotency_mismatch"), other

        # Another key for the same invoice, by the payer and by the other recipient.
        twice = await api.pay(ALICE, card, alice_mc, key=new_key())
        assert (twice.status, twice.code) == (409, "already_paid"), twice
        by_bob = await api.pay(BOB, card, bob_visa, key=new_key())
        assert (by_bob.status, by_bob.code) == (409, "already_paid"), by_bob
        assert (await api.verify(BOB, card)).body["status"] == "paid"
        # Bob's key space is his own: Alice's key means nothing for him.
        bob_same_key = await api.pay(BOB, card, bob_visa, key=key)
        assert (bob_same_key.status, bob_same_key.code) == (409, "already_paid"), bob_same_key

        # The replay still answers after all that.
        assert (await api.pay(ALICE, card, alice_visa, key=key)).body == first.body

    charges = await env.charges()
    assert [c["amount_minor"] for c in charges] == [41000]


async def test_same_key_sent_many_times_at_once(env: Env) -> None:
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        card = env.card([ALICE], amount="8.88")
        key = new_key()
        replies = await asyncio.gather(
            *(api.pay(ALICE, card, method_id, key=key) for _ in range(10))
        )
        assert not [r for r in replies if r.status >= 500], replies
        created = [r for r in replies if r.status == 201]
        assert created and created[0].body["status"] == "succeeded", replies
        assert all(r.body == created[0].body for r in created), replies
        others = [r for r in replies if r.status != 201]
        assert all((r.status, r.code) == (409, "idempotency_in_progress") for r in others), others
        # Once the first request is done, the key replays its answer.
        replay = await api.pay(ALICE, card, method_id, key=key)
        assert (replay.status, replay.body) == (201, created[0].body)
        history = (await api.call("GET", "/v1/payments", ALICE)).body["data"]
        assert [p["id"] for p in history] == [created[0].body["id"]]
    assert [c["amount_minor"] for c in await env.charges()] == [888]


def _outcomes(replies: list[Reply]) -> Counter[tuple[int, str | None]]:
    return Counter((r.status, r.body.get("status") if r.status == 201 else r.code) for r in replies)


def _check_one_success(replies: list[Reply]) -> None:
    outcomes = _outcomes(replies)
    assert not [r for r in replies if r.status >= 500], outcomes
    assert outcomes[(201, "succeeded")] == 1, outcomes
    allowed = {(201, "succeeded"), (409, "already_paid"), (409, "idempotency_in_progress")}
    assert set(outcomes) <= allowed, outcomes


def _high_limits(data: dict[str, Any]) -> None:
    # 25 attempts per user in one burst; the hourly attempt limit is not what is tested.
    data["limits"] = {"payment_attempts_per_hour": 1000}


async def _burst(apis: list[Api], card: str, methods: dict[str, str], count: int) -> list[Reply]:
    users = [ALICE, BOB]
    calls = [
        apis[i % len(apis)].pay(users[i % 2], card, methods[users[i % 2]], key=new_key())
        for i in range(count)
    ]
    return list(await asyncio.gather(*calls))


async def test_fifty_concurrent_payments_two_sidecars_one_postgresql(
    tmp_path: Path, pg_dsn: str, shared_sandbox: Sandbox
) -> None:
    async with fresh_database(pg_dsn) as url:
        env = await Env.create(tmp_path, url, shared_sandbox)
        env.edit(_high_limits)
        first, other = two_sidecars(env, tmp_path)
        with first, other:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                apis = [Api(session, p.url, env.token) for p in (first, other)]
                methods = {ALICE: await apis[0].method(ALICE), BOB: await apis[1].method(BOB)}
                card = env.card([ALICE, BOB], amount="777.77")
                # Both processes are warm (pools open) before the burst.
                for api in apis:
                    assert (await api.verify(BOB, card)).body["status"] == "payable"

                replies = await _burst(apis, card, methods, 50)
                _check_one_success(replies)
                for api in apis:
                    assert (await api.verify(ALICE, card)).body["status"] == "paid"
        for process in (first, other):
            log = process.log_text()
            assert "Traceback" not in log, log[-3000:]
            assert_no_secrets(process.log_path.name, log.encode(), env.tokens)

    charges = await env.charges()
    assert [c["amount_minor"] for c in charges] == [77777], charges


async def test_twenty_concurrent_payments_one_app_sqlite(
    tmp_path: Path, shared_sandbox: Sandbox
) -> None:
    env = await Env.create(tmp_path, "sqlite:///inboxpay.db", shared_sandbox)
    env.edit(_high_limits)
    async with env.sidecar() as api:
        methods = {ALICE: await api.method(ALICE), BOB: await api.method(BOB)}
        card = env.card([ALICE, BOB], amount="20.20")
        replies = await _burst([api], card, methods, 20)
        _check_one_success(replies)
        history = (await api.call("GET", "/v1/payments", ALICE)).body["data"]
        history += (await api.call("GET", "/v1/payments", BOB)).body["data"]
        assert [p["status"] for p in history] == ["succeeded"]

    charges = await env.charges()
    assert [c["amount_minor"] for c in charges] == [2020], charges


def _limit_three(data: dict[str, Any]) -> None:
    data["limits"] = {"payment_attempts_per_hour": 3}


def _check_three_paid(replies: list[Reply]) -> None:
    outcomes = _outcomes(replies)
    assert outcomes == Counter({(201, "succeeded"): 3, (429, "rate_limited"): 9}), outcomes


async def test_a_burst_never_overshoots_the_hourly_limit_two_sidecars(
    tmp_path: Path, pg_dsn: str, shared_sandbox: Sandbox
) -> None:
    """Twelve invoices paid at once through two sidecars: the limit of 3 holds exactly."""
    async with fresh_database(pg_dsn) as url:
        env = await Env.create(tmp_path, url, shared_sandbox)
        env.edit(_limit_three)
        first, other = two_sidecars(env, tmp_path)
        with first, other:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                apis = [Api(session, p.url, env.token) for p in (first, other)]
                method = await apis[0].method(ALICE)
                cards = [env.card([ALICE], amount=f"{i + 1}.00") for i in range(12)]
                replies = await asyncio.gather(
                    *(apis[i % 2].pay(ALICE, card, method) for i, card in enumerate(cards))
                )
        _check_three_paid(list(replies))
    assert len(await env.charges()) == 3


async def test_a_burst_never_overshoots_the_hourly_limit_sqlite(
    tmp_path: Path, shared_sandbox: Sandbox
) -> None:
    env = await Env.create(tmp_path, "sqlite:///inboxpay.db", shared_sandbox)
    env.edit(_limit_three)
    async with env.sidecar() as api:
        method = await api.method(ALICE)
        cards = [env.card([ALICE], amount=f"{i + 1}.00") for i in range(12)]
        replies = await asyncio.gather(*(api.pay(ALICE, card, method) for card in cards))
    _check_three_paid(list(replies))
    assert len(await env.charges()) == 3
