"""``inboxpay keys rotate-signing`` while a sidecar runs: cards signed before the rotation
still verify and pay, a card of the new key verifies on a sidecar that started before the
rotation (it re-reads the key files), and a key retired longer ago than the grace period
is refused with ``retired_key``.

SQLite only: nothing here depends on the store engine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest
import pytest_asyncio

from inboxpay.card.keyring import DAY
from tests.support.sandbox import Sandbox

from .harness import ALICE, Env
from .procs import run_cli

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def env(tmp_path: Path, shared_sandbox: Sandbox) -> Env:
    return await Env.create(tmp_path, "sqlite:///inboxpay.db", shared_sandbox)


async def rotate(env: Env) -> None:
    done = await asyncio.to_thread(
        run_cli, "keys", "rotate-signing", "--config", str(env.config_path)
    )
    assert done.returncode == 0, done.stderr
    assert "retired kid " in done.stdout and "current kid " in done.stdout, done.stdout


def kid_of_card(card: str) -> str:
    header = card.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def test_cards_of_the_old_and_the_new_key_verify_and_pay_across_a_rotation(
    env: Env,
) -> None:
    old_card = env.card([ALICE], amount="11.00")
    old_kid = kid_of_card(old_card)
    async with env.sidecar() as api:  # started before the rotation
        method = await api.method(ALICE)
        keys = (await api.call("GET", "/v1/keys")).body["keys"]
        assert [k["kid"] for k in keys] == [old_kid]

        await rotate(env)
        new_card = env.card([ALICE], amount="22.00")  # signed as the milter now signs
        new_kid = kid_of_card(new_card)
        assert new_kid != old_kid

        # The sidecar has not seen the new key yet: it re-reads the files for this card.
        reviewed = await api.verify(ALICE, new_card)
        assert (reviewed.status, reviewed.body["status"]) == (200, "payable"), reviewed
        paid = await api.pay(ALICE, new_card, method)
        assert (paid.status, paid.body["status"]) == (201, "succeeded"), paid

        # A card delivered before the rotation is still good for the grace period.
        reviewed = await api.verify(ALICE, old_card)
        assert (reviewed.status, reviewed.body["status"]) == (200, "payable"), reviewed
        paid = await api.pay(ALICE, old_card, method)
        assert (paid.status, paid.body["status"]) == (201, "succeeded"), paid

        keys = (await api.call("GET", "/v1/keys")).body["keys"]
        assert [k["kid"] for k in keys] == [new_kid, old_kid]
        assert isinstance(keys[1]["retired_at"], int) and "d" not in keys[1]

    assert sorted(c["amount_minor"] for c in await env.charges()) == [1100, 2200]


async def test_a_key_retired_past_its_grace_period_is_refused(env: Env) -> None:
    old_card = env.card([ALICE], amount="33.00")
    old_kid = kid_of_card(old_card)
    await rotate(env)
    # Pretend the rotation was longer ago than [signing] retired_key_grace_days.
    retired_file = env.config.signing.retired_keys_file
    retired = json.loads(retired_file.read_text())
    grace = env.config.signing.retired_key_grace_days * DAY
    retired["keys"][0]["retired_at"] = int(time.time()) - grace - 60
    retired_file.write_text(json.dumps(retired))

    async with env.sidecar() as api:
        method = await api.method(ALICE)
        refused = await api.verify(ALICE, old_card)
        assert (refused.status, refused.code) == (422, "retired_key"), refused
        assert "grace period ended" in refused.body["error"]["message"]
        refused = await api.pay(ALICE, old_card, method)
        assert (refused.status, refused.code) == (422, "retired_key"), refused
        keys = (await api.call("GET", "/v1/keys")).body["keys"]
        assert old_kid not in [k["kid"] for k in keys] and len(keys) == 1

        fresh = await api.verify(ALICE, env.card([ALICE]))
        assert fresh.status == 200, fresh

    assert await env.charges() == []
