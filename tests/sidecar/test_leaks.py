"""After a full run (save cards, pay, decline, 3-D Secure, edit, delete), no card number,
security code, bearer token, or holder name in clear is left where it could leak: the
database (the SQLite file with its WAL, while running and after; a pg_dump of
PostgreSQL), the sidecar's and the sandbox's logs, the sandbox ledger, and the metrics."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import aiohttp
import pytest
from store.pg import find_bindir

from inboxpay.logs import JsonFormatter

from .harness import (
    ALICE,
    BOB,
    DECLINE,
    GOOD_CODE,
    HOLDER,
    NO_FUNDS,
    PROFILE_NAME,
    THREE_DS,
    VISA_OK,
    WRONG_CODE,
    Env,
    spaced,
)
from .leaks import AMEX, AMEX_CODE, assert_no_secrets, code_near_key, number_forms

pytestmark = pytest.mark.asyncio


async def _database_bytes(env: Env, when: str) -> dict[str, bytes]:
    if env.store_url.startswith("sqlite"):
        files = sorted(env.root.glob("inboxpay.db*"))  # the file, -wal and -shm
        return {f"{f.name} ({when})": f.read_bytes() for f in files}
    pg_dump = find_bindir() / "pg_dump"
    done = await asyncio.to_thread(
        subprocess.run,
        [str(pg_dump), "--no-owner", "--dbname", env.store_url],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return {f"pg_dump ({when})": done.stdout}


async def _run_everything(env: Env) -> tuple[str, dict[str, bytes]]:
    """The flows whose traces are scanned; the /metrics text and the database while
    the sidecar still runs (SQLite: with its WAL)."""
    async with env.sidecar() as api:
        assert (await api.put_profile(ALICE)).status == 200
        visa = (await api.add_method(ALICE, spaced(VISA_OK))).body["id"]
        amex = (await api.add_method(ALICE, AMEX)).body["id"]
        declining = await api.method(ALICE, spaced(DECLINE).replace(" ", "-"))
        three_ds = await api.method(ALICE, THREE_DS)
        broke = await api.method(BOB, NO_FUNDS)

        shared = env.card([ALICE, BOB], amount="12.34")
        assert (await api.pay(BOB, shared, broke)).body["decline_reason"] == "insufficient_funds"
        assert (await api.pay(ALICE, shared, declining)).body["status"] == "declined"
        r = await api.pay(ALICE, shared, visa, code=WRONG_CODE)
        assert r.body["decline_reason"] == "incorrect_cvc", r
        r = await api.pay(ALICE, shared, amex, code=AMEX_CODE)
        assert r.body["status"] == "succeeded", r
        r = await api.pay(ALICE, env.card([ALICE]), visa, code=GOOD_CODE)
        assert r.body["status"] == "succeeded", r

        r = await api.pay(ALICE, env.card([ALICE], amount="56.78"), three_ds)
        assert r.body["status"] == "requires_action", r
        async with (
            aiohttp.ClientSession() as browser,
            browser.post(r.body["challenge_url"], data={"outcome": "pass"}) as page,
        ):
            assert page.status == 200
        assert (await api.payment(ALICE, r.body["id"])).body["status"] == "succeeded"

        patch = {"nickname": "old card", "exp_month": 11}
        path = f"/v1/payment-methods/{declining}"
        assert (await api.call("PATCH", path, ALICE, json_body=patch)).status == 200
        assert (await api.call("DELETE", f"/v1/payment-methods/{broke}", BOB)).status == 204
        assert (await api.call("GET", "/v1/payment-methods", ALICE)).status == 200
        metrics = await api.call("GET", "/metrics")
        assert metrics.status == 200 and "inboxpay_sidecar_payments_total" in metrics.text
        return metrics.text, await _database_bytes(env, "running")


async def test_no_card_data_tokens_or_names_leak(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    metrics, database = await _run_everything(env)
    database |= await _database_bytes(env, "stopped")
    assert len(await env.charges()) == 3

    formatter = JsonFormatter()  # the production format, with every extra= field
    sidecar_logs = "\n".join(formatter.format(r) for r in caplog.records)
    sandbox_files = env.sandbox.ledger_file.parent.glob(env.sandbox.ledger_file.name + "*")
    places: dict[str, bytes] = {
        **database,
        "sandbox log": env.sandbox.log_text().encode(),
        **{f"sandbox {f.name}": f.read_bytes() for f in sandbox_files},
        "sidecar logs": sidecar_logs.encode(),
        "metrics": metrics.encode(),
    }
    # The scan reads what it should: each place holds what it is known to hold.
    assert "processor answered" in sidecar_logs and "/v1/payments/{id}" in sidecar_logs
    assert b"charge created" in places["sandbox log"]
    if env.store_url.startswith("sqlite"):
        assert any("-wal (running)" in place for place in database), sorted(database)
    for when in ("running", "stopped"):
        held = b"".join(data for place, data in database.items() if when in place)
        # The billing profile and last4 are kept in clear by design.
        assert PROFILE_NAME.encode() in held and b'"4242"' in held.replace(b"'", b'"'), when

    assert env.tokens
    for place, data in places.items():
        assert_no_secrets(place, data, env.tokens)
    for place, data in database.items():
        assert HOLDER.encode() not in data, f"{place} holds the holder name in clear"
        assert HOLDER.encode().hex().encode() not in data, f"{place} holds the holder name"


async def test_the_scan_would_see_a_leak() -> None:
    """The patterns match what a leak looks like, so the scan above can fail."""
    line = b'{"msg": "charge", "security_code": "731", "number": "4242 4242 4242 4242"}'
    assert any(form in line for form in number_forms(VISA_OK))
    assert code_near_key(GOOD_CODE).search(line)
    assert code_near_key(GOOD_CODE).search(b"cvc=731")
    assert code_near_key(AMEX_CODE).search(b"'securityCode': '4821'")
    assert number_forms(VISA_OK)[-1] in b"\\x" + VISA_OK.encode().hex().encode()
    with pytest.raises(AssertionError, match="holds card number"):
        assert_no_secrets("x", b"4242-4242-4242-4242", [])
    with pytest.raises(AssertionError, match="bearer token"):
        assert_no_secrets("x", b"Bearer a.b.c", ["a.b.c"])
