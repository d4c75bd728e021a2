"""The pay flow end to end, on both stores, through a real sandbox processor process:
save a card, verify an invoice card, pay it once, read the receipt; declines, security
code lockout, and 3-D Secure."""

from __future__ import annotations

import aiohttp
import pytest

from inboxpay.sidecar.paying import processor_key

from .harness import (
    ALICE,
    DECLINE,
    GOOD_CODE,
    HOLDER,
    MC_OK,
    NO_FUNDS,
    PROFILE_NAME,
    THREE_DS,
    VISA_OK,
    WRONG_CODE,
    Env,
    new_key,
)

pytestmark = pytest.mark.asyncio


async def test_full_flow_pays_once_and_shows_a_receipt(env: Env) -> None:
    async with env.sidecar() as api:
        profile = await api.put_profile(ALICE)
        assert profile.status == 200, profile
        assert profile.body["name"] == PROFILE_NAME
        assert profile.body["address"]["country"] == "GB"
        assert (await api.call("GET", "/v1/billing-profile", ALICE)).body == profile.body

        saved = await api.add_method(ALICE, "4242 4242 4242 4242")
        assert saved.status == 201, saved
        assert saved.body["brand"] == "visa" and saved.body["last4"] == "4242"
        assert saved.body["name"] == HOLDER
        assert "number" not in saved.body and "4242424242424242" not in saved.text
        method_id = saved.body["id"]

        card = env.card([ALICE], amount="1234.50", currency="USD", number="INV-0042")
        review = await api.verify(ALICE, card)
        assert review.status == 200, review
        r = review.body
        assert r["status"] == "payable"
        assert r["merchant"] == "Wide World Importers"
        assert (r["amount"], r["currency"], r["invoice_number"]) == ("1234.50", "USD", "INV-0042")
        assert r["due_date"] and r["overdue"] is False
        assert r["invoice_url"].startswith("https://in.xero.com/")
        assert r["partner"] == {"id": "xero", "name": "Xero"}
        assert r["authentication"]["dkim"] == "pass"
        assert r["authentication"]["dkim_domain"] == "post.xero.com"
        assert r["authentication"]["spf"] == "pass"
        assert r["payment"] is None

        key = new_key()
        paid = await api.pay(ALICE, card, method_id, key=key)
        assert paid.status == 201, paid
        assert paid.body["status"] == "succeeded"
        assert paid.body["decline_reason"] is None and paid.body["challenge_url"] is None
        payment_id = paid.body["id"]

        receipt = await api.payment(ALICE, payment_id)
        assert receipt.status == 200, receipt
        rc = receipt.body
        assert rc["id"] == payment_id and rc["status"] == "succeeded"
        assert (rc["amount"], rc["currency"]) == ("1234.50", "USD")
        assert rc["merchant"] == "Wide World Importers"
        assert rc["invoice_number"] == "INV-0042"
        assert rc["payment_method"] == {"id": method_id, "brand": "visa", "last4": "4242"}
        assert rc["created_at"] and rc["updated_at"]

        history = await api.call("GET", "/v1/payments", ALICE)
        assert [p["id"] for p in history.body["data"]] == [payment_id]

        again = await api.verify(ALICE, card)
        assert again.body["status"] == "paid"
        assert again.body["payment"] == {"id": payment_id, "status": "succeeded"}
        invoice = (await api.services.store.get_payment_any_owner(payment_id)).invoice_key

    charges = await env.charges()
    assert len(charges) == 1, charges
    assert (charges[0]["amount_minor"], charges[0]["currency"]) == (123450, "USD")
    # One key per invoice payment: the invoice's first, as no attempt was declined before.
    assert charges[0]["idempotency_key"] == processor_key(env.recipient_key, invoice, 0)


async def test_declines_lockout_and_a_later_success(env: Env) -> None:
    async with env.sidecar() as api:
        declining = await api.method(ALICE, DECLINE)
        broke = await api.method(ALICE, NO_FUNDS)
        visa = await api.method(ALICE, VISA_OK)
        mastercard = await api.method(ALICE, MC_OK)
        card = env.card([ALICE], amount="99.95")

        r = await api.pay(ALICE, card, declining)
        assert r.status == 201, r
        # The sandbox's code for 4000 0000 0000 0002 (sandbox.cards.DECLINES).
        assert (r.body["status"], r.body["decline_reason"]) == ("declined", "generic_decline")

        r = await api.pay(ALICE, card, broke)
        assert (r.status, r.body["status"], r.body["decline_reason"]) == (
            201,
            "declined",
            "insufficient_funds",
        ), r

        for _ in range(3):
            r = await api.pay(ALICE, card, visa, code=WRONG_CODE)
            assert (r.status, r.body["status"], r.body["decline_reason"]) == (
                201,
                "declined",
                "incorrect_cvc",
            ), r
        # Locked: not even the right code is tried on this card now.
        for code in (WRONG_CODE, GOOD_CODE):
            locked = await api.pay(ALICE, card, visa, code=code)
            assert (locked.status, locked.code) == (429, "security_code_locked"), locked

        # The invoice is still payable after all those declines, with another card.
        assert (await api.verify(ALICE, card)).body["status"] == "payable"
        ok = await api.pay(ALICE, card, mastercard)
        assert (ok.status, ok.body["status"]) == (201, "succeeded"), ok
        assert ok.body["payment_method"]["last4"] == "4444"
        assert (await api.verify(ALICE, card)).body["status"] == "paid"

        statuses = sorted(
            p["status"] for p in (await api.call("GET", "/v1/payments", ALICE)).body["data"]
        )
        assert statuses == ["declined"] * 5 + ["succeeded"]

    charges = await env.charges()
    assert [(c["amount_minor"], c["currency"]) for c in charges] == [(9995, "USD")]


async def test_three_d_secure_challenge_then_succeeded(env: Env) -> None:
    async with env.sidecar() as api:
        method_id = await api.method(ALICE, THREE_DS)
        card = env.card([ALICE], amount="250.00", currency="EUR")
        r = await api.pay(ALICE, card, method_id)
        assert (r.status, r.body["status"]) == (201, "requires_action"), r
        challenge_url = r.body["challenge_url"]
        assert challenge_url.startswith(env.sandbox.url + "/challenge/")
        payment_id = r.body["id"]

        # Not paid yet, but held: nobody can start a second payment meanwhile.
        assert (await api.verify(ALICE, card)).body["status"] == "processing"
        again = await api.pay(ALICE, card, method_id)
        assert (again.status, again.code) == (409, "already_paid"), again
        assert await env.charges() == []

        # The cardholder's browser, on the processor's page.
        async with aiohttp.ClientSession() as browser:
            async with browser.get(challenge_url) as page:
                assert page.status == 200
                html = await page.text()
                assert "Complete authentication" in html and 'value="pass"' in html
            async with browser.post(challenge_url, data={"outcome": "pass"}) as answer:
                assert answer.status == 200, await answer.text()

        done = await api.payment(ALICE, payment_id)
        assert (done.status, done.body["status"]) == (200, "succeeded"), done
        assert done.body["challenge_url"] is None
        assert (await api.verify(ALICE, card)).body["status"] == "paid"
        # Reading it again neither changes it nor charges again.
        assert (await api.payment(ALICE, payment_id)).body["status"] == "succeeded"
        invoice = (await api.services.store.get_payment_any_owner(payment_id)).invoice_key

        # A failed challenge declines the payment and frees the invoice for another try.
        other = env.card([ALICE], amount="3.00", currency="EUR")
        r = await api.pay(ALICE, other, method_id)
        async with (
            aiohttp.ClientSession() as browser,
            browser.post(r.body["challenge_url"], data={"outcome": "fail"}) as answer,
        ):
            assert answer.status == 200
        failed = await api.payment(ALICE, r.body["id"])
        assert (failed.body["status"], failed.body["decline_reason"]) == (
            "declined",
            "authentication_failed",
        ), failed
        assert (await api.verify(ALICE, other)).body["status"] == "payable"

    charges = await env.charges()
    assert len(charges) == 1, charges
    assert (charges[0]["amount_minor"], charges[0]["currency"]) == (25000, "EUR")
    assert charges[0]["idempotency_key"] == processor_key(env.recipient_key, invoice, 0)
