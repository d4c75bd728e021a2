"""The expiry is judged by the server only: clients send it as the user typed it
("MM/YY" or "MM/YYYY"), the server reads a two-digit year and checks the date in
Anywhere-on-Earth time, and names the field at fault so that a form shows it there."""

from __future__ import annotations

import datetime

import pytest

from .harness import ALICE, NEXT_YEAR, VISA_OK, Api, Env, Reply

pytestmark = pytest.mark.asyncio

LAST_YEAR = datetime.date.today().year - 1


async def add(api: Api, number: str, expiry: str) -> Reply:
    # null is absent: the harness's exp_month and exp_year are left out.
    return await api.add_method(ALICE, number, expiry=expiry, exp_month=None, exp_year=None)


async def test_expiry_as_typed(env: Env) -> None:
    async with env.sidecar() as api:
        saved = await add(api, VISA_OK, f"8/{NEXT_YEAR % 100:02d}")
        assert saved.status == 201, saved
        body = saved.body
        assert (body["exp_month"], body["exp_year"], body["expired"]) == (8, NEXT_YEAR, False)

        refused = [
            (f"12/{LAST_YEAR % 100:02d}", "expired_card"),
            ("12/99", "expired_card"),  # 1999: a year is never read 73 years ahead
            ("13/30", "invalid_expiry"),
            ("0830", "invalid_expiry"),  # one form only: the pane writes 08/30
            ("soon", "invalid_expiry"),
            ("", "invalid_expiry"),
        ]
        for typed, code in refused:
            r = await add(api, "5555555555554444", typed)
            assert (r.status, r.code, r.body["error"].get("field")) == (400, code, "expiry"), typed

        path = f"/v1/payment-methods/{body['id']}"
        later = await api.call("PATCH", path, ALICE, json_body={"expiry": f"01/{NEXT_YEAR + 1}"})
        assert (later.status, later.body["exp_month"], later.body["exp_year"]) == (
            200,
            1,
            NEXT_YEAR + 1,
        ), later
        past = await api.call("PATCH", path, ALICE, json_body={"expiry": f"01/{LAST_YEAR}"})
        assert (past.status, past.code, past.body["error"]["field"]) == (
            400,
            "expired_card",
            "expiry",
        ), past


async def test_one_way_of_giving_the_expiry(env: Env) -> None:
    async with env.sidecar() as api:
        both = await api.add_method(ALICE, VISA_OK, expiry=f"12/{NEXT_YEAR}")  # + exp_month/year
        assert (both.status, both.code) == (400, "invalid_field"), both
        body = {"number": VISA_OK, "name": "A"}
        neither = await api.call("POST", "/v1/payment-methods", ALICE, json_body=body)
        assert (neither.status, neither.code) == (400, "missing_field"), neither


async def test_a_saved_cards_expiry_is_judged_by_the_server(env: Env) -> None:
    async with env.sidecar() as api:
        method = await api.method(ALICE)
        # A card that ran out since it was saved.
        await api.services.store.update_payment_method(ALICE, method, exp_year=LAST_YEAR)
        listed = (await api.call("GET", "/v1/payment-methods", ALICE)).body["data"]
        assert [m["expired"] for m in listed] == [True]
