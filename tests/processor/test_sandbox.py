"""The sandbox processor as a separate process, driven by the real ProcessorClient."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from joserfc.jwk import ECKey

from inboxpay.processor import (
    ChargeResult,
    ChargeStatus,
    ProcessorClient,
    ProcessorRejected,
    seal_card,
)
from tests.support.sandbox import Sandbox

from .helpers import HOLDER, NEXT_YEAR, Keys, card, drive, request

RETURN_URL = "https://mail.example/pay/done?payment=p1"


def ledger_ids(sandbox: Sandbox, keys: Keys) -> list[str]:
    async def steps(c: ProcessorClient) -> list[ChargeResult]:
        return await c.ledger()

    return [c.id for c in drive(sandbox.url, keys, steps)]


def test_health(sandbox: Sandbox, keys: Keys) -> None:
    async def steps(c: ProcessorClient) -> None:
        await c.ping()

    drive(sandbox.url, keys, steps)  # raises ProcessorUnavailable unless 200

    async def healthz() -> tuple[int, object]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{sandbox.url}/healthz") as reply,
        ):
            return reply.status, await reply.json()

    assert asyncio.run(healthz()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("number", "cvc", "exp_year", "status", "code"),
    [
        ("4242424242424242", "123", NEXT_YEAR, ChargeStatus.SUCCEEDED, None),
        ("4000000000000002", "123", NEXT_YEAR, ChargeStatus.DECLINED, "generic_decline"),
        ("4000000000009995", "123", NEXT_YEAR, ChargeStatus.DECLINED, "insufficient_funds"),
        ("4000002500003155", "123", NEXT_YEAR, ChargeStatus.REQUIRES_ACTION, None),
        ("4242424242424242", "000", NEXT_YEAR, ChargeStatus.DECLINED, "incorrect_cvc"),
        ("4242424242424241", "123", NEXT_YEAR, ChargeStatus.DECLINED, "invalid_number"),
        ("4242424242424242", "123", NEXT_YEAR - 3, ChargeStatus.DECLINED, "expired_card"),
    ],
)
def test_test_card_outcomes(
    sandbox: Sandbox,
    keys: Keys,
    number: str,
    cvc: str,
    exp_year: int,
    status: ChargeStatus,
    code: str | None,
) -> None:
    req = request()

    async def steps(c: ProcessorClient) -> tuple[ChargeResult, ChargeResult | None]:
        return await c.charge(req, card(number, cvc=cvc, exp_year=exp_year)), await c.find(
            req.idempotency_key
        )

    result, found = drive(sandbox.url, keys, steps)
    assert (result.status, result.decline_code) == (status, code)
    assert (result.amount_minor, result.currency) == (req.amount_minor, req.currency)
    assert found == result
    if status is ChargeStatus.REQUIRES_ACTION:
        assert result.challenge_url == f"{sandbox.url}/challenge/{result.id}"
    else:
        assert result.challenge_url is None
    assert (result.id in ledger_ids(sandbox, keys)) is (status is ChargeStatus.SUCCEEDED)


def test_replay_charges_once(sandbox: Sandbox, keys: Keys) -> None:
    req = request()

    async def steps(c: ProcessorClient) -> tuple[list[ChargeResult], ChargeResult | None]:
        # Each call seals afresh, so the JWEs differ: the sandbox compares the card.
        charges = [await c.charge(req, card()) for _ in range(3)]
        return charges, await c.find(req.idempotency_key)

    results, found = drive(sandbox.url, keys, steps)
    assert results == [results[0]] * 3 and found == results[0]
    assert ledger_ids(sandbox, keys).count(results[0].id) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount_minor": 99_99},
        {"currency": "EUR"},
        {"return_url": RETURN_URL},
        {"card": "5555555555554444"},
    ],
)
def test_same_key_different_request_is_refused(
    sandbox: Sandbox, keys: Keys, change: dict[str, Any]
) -> None:
    first = request()
    second = request(
        key=first.idempotency_key,
        amount_minor=change.get("amount_minor", first.amount_minor),
        currency=change.get("currency", first.currency),
        return_url=change.get("return_url"),
    )

    async def steps(c: ProcessorClient) -> ChargeResult:
        charged = await c.charge(first, card())
        with pytest.raises(ProcessorRejected) as e:
            await c.charge(second, card(change.get("card", "4242424242424242")))
        assert (e.value.status, e.value.code) == (409, "idempotency_mismatch")
        return charged

    charged = drive(sandbox.url, keys, steps)
    assert ledger_ids(sandbox, keys).count(charged.id) == 1


async def _fetch_page(url: str) -> tuple[int, str, str, str]:
    async with aiohttp.ClientSession() as browser, browser.get(url) as page:
        return (
            page.status,
            page.content_type,
            page.headers["Content-Security-Policy"],
            await page.text(),
        )


async def _answer(url: str, outcome: str) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as browser,
        browser.post(url, data={"outcome": outcome}, allow_redirects=False) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.text()


def test_3ds_challenge_passed(sandbox: Sandbox, keys: Keys) -> None:
    req = request(return_url=RETURN_URL)

    async def steps(c: ProcessorClient) -> ChargeResult:
        charge = await c.charge(req, card("4000002500003155"))
        assert charge.status is ChargeStatus.REQUIRES_ACTION and charge.challenge_url
        status, content_type, csp, page = await _fetch_page(charge.challenge_url)
        assert (status, content_type) == (200, "text/html")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "Complete authentication" in page and "Fail authentication" in page
        assert "Babbage &amp; Co" in page and "12.50 USD" in page and "3155" in page
        # Self-contained: nothing to load, nothing to run.
        assert "<script" not in page and "src=" not in page and "<link" not in page

        status, headers, _ = await _answer(charge.challenge_url, "pass")
        assert status == 303 and headers["Location"] == RETURN_URL
        # Browsers apply form-action to the redirect after the post.
        assert "https://mail.example" in headers["Content-Security-Policy"]

        assert (await _answer(charge.challenge_url, "fail"))[0] == 409  # answered once only
        done = await c.get(charge.id)
        assert (done.status, done.decline_code, done.challenge_url) == (
            ChargeStatus.SUCCEEDED,
            None,
            None,
        )
        # A replay of the request answers the charge as it is now, and charges nothing more.
        assert await c.charge(req, card("4000002500003155")) == done
        return done

    done = drive(sandbox.url, keys, steps)
    assert ledger_ids(sandbox, keys).count(done.id) == 1


def test_3ds_challenge_failed(sandbox: Sandbox, keys: Keys) -> None:
    async def steps(c: ProcessorClient) -> ChargeResult:
        charge = await c.charge(request(), card("4000002500003155"))
        assert charge.challenge_url
        assert (await _answer(charge.challenge_url, "maybe"))[0] == 400
        status, headers, page = await _answer(charge.challenge_url, "fail")
        assert status == 200 and "Location" not in headers and "close this window" in page
        return await c.get(charge.id)

    done = drive(sandbox.url, keys, steps)
    assert (done.status, done.decline_code) == (ChargeStatus.DECLINED, "authentication_failed")
    assert done.id not in ledger_ids(sandbox, keys)


def test_unknown_challenge(sandbox: Sandbox) -> None:
    status, *_ = asyncio.run(_answer(f"{sandbox.url}/challenge/ch_nope", "pass"))
    assert status == 404


def test_unknown_charge(sandbox: Sandbox, keys: Keys) -> None:
    async def steps(c: ProcessorClient) -> None:
        assert await c.find("pay_never_used") is None
        with pytest.raises(ProcessorRejected) as e:
            await c.get("ch_nope")
        assert (e.value.status, e.value.code) == (404, "charge_not_found")

    drive(sandbox.url, keys, steps)


def test_wrong_api_key(sandbox: Sandbox, keys: Keys) -> None:
    req = request()

    async def steps(c: ProcessorClient) -> None:
        for call in (c.charge(req, card()), c.find(req.idempotency_key), c.ledger()):
            with pytest.raises(ProcessorRejected) as e:
                await call
            assert (e.value.status, e.value.code) == (401, "unauthorized")

    drive(sandbox.url, keys, steps, api_key="not-the-key-" + "x" * 20)

    async def lookup(c: ProcessorClient) -> ChargeResult | None:
        return await c.find(req.idempotency_key)

    assert drive(sandbox.url, keys, lookup) is None


def test_invalid_request_is_rejected(sandbox: Sandbox, keys: Keys) -> None:
    async def steps(c: ProcessorClient) -> None:
        with pytest.raises(ProcessorRejected) as e:
            await c.charge(request(return_url="javascript:alert(1)"), card())
        assert (e.value.status, e.value.code) == (400, "invalid_request")

    drive(sandbox.url, keys, steps)


def test_sealed_to_another_key_leaks_nothing(sandbox: Sandbox, keys: Keys) -> None:
    other = ECKey.generate_key("P-256", private=True)
    req = request()
    body = req.to_json(seal_card(card(), ECKey.import_key(other.as_dict(private=False))))

    async def go() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{sandbox.url}/v1/charges",
                json=body,
                headers={"Authorization": f"Bearer {keys.api_key}"},
            ) as resp,
        ):
            return resp.status, await resp.json()

    status, answer = asyncio.run(go())
    assert status == 400
    # The same fixed answer for every unusable payment method: no key ids, no library text.
    assert answer == {
        "error": {"code": "invalid_payment_method", "message": "payment_method cannot be used"}
    }

    async def steps(c: ProcessorClient) -> None:
        with pytest.raises(ProcessorRejected) as e:
            await c.charge(req, card())
        assert (e.value.status, e.value.code) == (400, "invalid_payment_method")

    drive(sandbox.url, keys, steps, public_key=ECKey.import_key(other.as_dict(private=False)))


async def _recording_proxy(target: str, seen: list[bytes]) -> web.AppRunner:
    """Forwards everything to ``target`` and keeps each raw request body, as it arrives."""

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(body)
        async with (
            aiohttp.ClientSession() as upstream,
            upstream.request(
                request.method,
                target + request.path_qs,
                data=body,
                headers={
                    k: request.headers[k]
                    for k in ("Authorization", "Content-Type")
                    if k in request.headers
                },
            ) as resp,
        ):
            return web.Response(
                status=resp.status, body=await resp.read(), content_type=resp.content_type
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def test_card_data_never_travels_in_clear(sandbox: Sandbox, keys: Keys) -> None:
    secrets_in_card = ("4242424242424242", "4000002500003155", HOLDER, "St James")
    seen: list[bytes] = []

    async def go() -> None:
        runner = await _recording_proxy(sandbox.url, seen)
        try:
            async with aiohttp.ClientSession() as session:
                proxy = f"http://127.0.0.1:{runner.addresses[0][1]}"
                client = ProcessorClient(session, proxy, keys.api_key, keys.public_key)
                assert (await client.charge(request(), card())).status is ChargeStatus.SUCCEEDED
                await client.charge(request(), card("4000002500003155", cvc="000"))
        finally:
            await runner.cleanup()

    asyncio.run(go())
    assert len(seen) == 2
    for raw in seen:
        payment_method = json.loads(raw)["payment_method"]
        assert payment_method.count(".") == 4 and all(payment_method.split("."))
        for secret in secrets_in_card:
            assert secret.encode() not in raw
    log = sandbox.log_text()
    for secret in secrets_in_card:
        assert secret not in log
