"""The security-code lock holds under a burst: every attempt counts as a wrong code from
the moment its payment row is written (in the same transaction, under the limit's lock)
until the processor says otherwise, so concurrent wrong codes stop at exactly the limit,
even through two sidecars on one PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from store.pg import fresh_database

from tests.support.sandbox import Sandbox

from .harness import ALICE, GOOD_CODE, WRONG_CODE, Api, Env, Reply, two_sidecars

pytestmark = pytest.mark.asyncio

BURST = 12
CVC_KIND = "cvc_failure"  # the attempts the lock counts
LOCK_AFTER = 3  # the default cvc_failures_before_lock


def _outcome(r: Reply) -> tuple[int, str | None]:
    return (r.status, r.body.get("decline_reason") if r.status == 201 else r.code)


async def _check_locked_after_three(env: Env, replies: list[Reply], method: str) -> None:
    outcomes = Counter(_outcome(r) for r in replies)
    expected = {(201, "incorrect_cvc"): LOCK_AFTER, (429, "security_code_locked"): BURST - 3}
    assert outcomes == Counter(expected), outcomes
    async with env.store() as store:
        tried = await store.list_payments(ALICE)
        assert (
            sorted((p.status, p.decline_reason) for p in tried)
            == [("declined", "incorrect_cvc")] * LOCK_AFTER
        )
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
        assert await store.count_attempts(ALICE, CVC_KIND, method, since) == LOCK_AFTER


async def _burst(apis: list[Api], env: Env, method: str) -> list[Reply]:
    cards = [env.card([ALICE], amount=f"{i + 1}.00") for i in range(BURST)]
    calls = (apis[i % len(apis)].pay(ALICE, c, method, WRONG_CODE) for i, c in enumerate(cards))
    return list(await asyncio.gather(*calls))


async def test_twelve_wrong_codes_at_once_two_sidecars_postgresql(
    tmp_path: Path, pg_dsn: str, shared_sandbox: Sandbox
) -> None:
    async with fresh_database(pg_dsn) as url:
        env = await Env.create(tmp_path, url, shared_sandbox)
        first, other = two_sidecars(env, tmp_path)
        with first, other:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                apis = [Api(session, p.url, env.token) for p in (first, other)]
                method = await apis[0].method(ALICE)
                for api in apis:  # both warm (pools open) before the burst
                    assert (await api.verify(ALICE, env.card([ALICE]))).status == 200
                replies = await _burst(apis, env, method)
                # Locked for the right code too, on either sidecar.
                for api in apis:
                    locked = await api.pay(ALICE, env.card([ALICE]), method, GOOD_CODE)
                    assert (locked.status, locked.code) == (429, "security_code_locked"), locked
        await _check_locked_after_three(env, replies, method)
    assert await env.charges() == []


async def test_twelve_wrong_codes_at_once_one_app_sqlite(
    tmp_path: Path, shared_sandbox: Sandbox
) -> None:
    env = await Env.create(tmp_path, "sqlite:///inboxpay.db", shared_sandbox)
    async with env.sidecar() as api:
        method = await api.method(ALICE)
        replies = await _burst([api], env, method)
    await _check_locked_after_three(env, replies, method)


async def test_right_codes_at_once_are_not_locked_out(
    tmp_path: Path, shared_sandbox: Sandbox
) -> None:
    """Holds are released as soon as the processor accepts the code."""
    env = await Env.create(tmp_path, "sqlite:///inboxpay.db", shared_sandbox)
    async with env.sidecar() as api:
        method = await api.method(ALICE)
        for _ in range(2):
            cards = [env.card([ALICE], amount=f"{i + 1}.00") for i in range(LOCK_AFTER)]
            replies = await asyncio.gather(*(api.pay(ALICE, c, method) for c in cards))
            assert [r.body["status"] for r in replies] == ["succeeded"] * LOCK_AFTER, replies
        wrong = await api.pay(ALICE, env.card([ALICE]), method, WRONG_CODE)
        assert wrong.body["decline_reason"] == "incorrect_cvc", wrong
        again = await api.pay(ALICE, env.card([ALICE]), method, GOOD_CODE)
        assert again.body["status"] == "succeeded", again
