"""Bad input on every endpoint is a 4xx with a JSON error body, never a 500 (nor a 503 that
blames the store), and loses nothing that is stored."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest

from .harness import ADMIN, ALICE, GOOD_CODE, NEXT_YEAR, VISA_OK, Env, Reply, new_key

pytestmark = pytest.mark.asyncio

JSON = {"Content-Type": "application/json"}
LAST_YEAR = datetime.date.today().year - 1


def assert_error(r: Reply, status: int, code: str | None = None, what: object = "") -> None:
    """A 4xx with exactly ``{"error": {"code": str, "message": str}}`` as JSON, and a
    ``field`` (str) naming the request field at fault when there is one."""
    assert r.status == status, (what, r)
    assert 400 <= r.status < 500, (what, r)
    assert r.headers.get("Content-Type", "").startswith("application/json"), (what, r)
    assert isinstance(r.body, dict) and set(r.body) == {"error"}, (what, r)
    error = r.body["error"]
    assert set(error) - {"field"} == {"code", "message"}, (what, r)
    assert isinstance(error["code"], str) and isinstance(error["message"], str), (what, r)
    assert isinstance(error.get("field", ""), str), (what, r)
    if code is not None:
        assert error["code"] == code, (what, r)


def endpoints(method_id: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, user, a valid body) of every endpoint that takes a body."""
    return [
        ("POST", "/v1/cards/verify", ALICE, {"card": "x.y.z"}),
        (
            "POST",
            "/v1/payment-methods",
            ALICE,
            {"number": "5555555555554444", "exp_month": 1, "exp_year": NEXT_YEAR, "name": "A"},
        ),
        ("PATCH", f"/v1/payment-methods/{method_id}", ALICE, {"nickname": "work"}),
        ("PUT", "/v1/billing-profile", ALICE, {"name": "Ada", "email": "ada@example.com"}),
        (
            "POST",
            "/v1/payments",
            ALICE,
            {"card": "x.y.z", "payment_method_id": method_id, "security_code": GOOD_CODE},
        ),
        ("PUT", "/v1/admin/orgs/example.org", ADMIN, {"pay_enabled": True}),
    ]


#: For each endpoint's body: one field set to a value of the wrong type.
WRONG_TYPES: dict[str, list[dict[str, Any]]] = {
    "/v1/cards/verify": [{"card": 123}, {"card": ["a"]}, {"card": True}],
    "/v1/payment-methods": [
        {"number": 4242424242424242},
        {"exp_month": "12"},
        {"exp_month": 12.0},
        {"exp_year": True},
        {"name": None},  # null is "missing", and name is required
        {"billing_address": "1 Main St"},
        {"billing_address": {"line1": 1}},
        {"expiry": 1229},
    ],
    "/v1/payment-methods/": [
        {"exp_month": "1"},
        {"expiry": ["12", "29"]},
        {"nickname": 7},
        {"billing_address": []},
    ],
    "/v1/billing-profile": [{"name": {}}, {"email": ["a@b"]}, {"address": 3}],
    "/v1/payments": [
        {"security_code": 731},
        {"payment_method_id": 1},
        {"card": {"v": 1}},
    ],
    "/v1/admin/orgs/": [{"pay_enabled": "false"}, {"pay_enabled": 0}, {"pay_enabled": None}],
}


def _wrong_types(path: str) -> list[dict[str, Any]]:
    for prefix, values in WRONG_TYPES.items():
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return values
    raise AssertionError(path)


async def _chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_every_body_endpoint_refuses_bad_bodies(env: Env) -> None:
    limit = env.config.sidecar.max_body_bytes
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        for method, path, user, good in endpoints(method_id):
            headers = {"Idempotency-Key": new_key()} if path == "/v1/payments" else {}

            async def send(
                data: Any,
                content_type: str | None = "application/json",
                *,
                headers: dict[str, str] = headers,
                method: str = method,
                path: str = path,
                user: str = user,
            ) -> Reply:
                sent = dict(headers)
                if content_type is not None:
                    sent["Content-Type"] = content_type
                return await api.call(method, path, user, data=data, headers=sent)

            where = f"{method} {path}"
            for raw in ('{"card": ', "{'card': 'x'}", "", "nul\x00", "[" * 50_000, b"\xff\xfe{"):
                assert_error(await send(raw), 400, "invalid_json", (where, raw[:10]))
            for not_object in ("[]", '"text"', "42", "null"):
                assert_error(await send(not_object), 400, "invalid_body", (where, not_object))
            for change in _wrong_types(path):
                r = await api.call(
                    method, path, user, json_body={**good, **change}, headers=headers
                )
                assert_error(r, 400, None, (where, change))
                assert r.code in ("invalid_field", "invalid_body", "missing_field"), (where, r)
            r = await api.call(
                method, path, user, json_body={**good, "surprise": 1}, headers=headers
            )
            assert_error(r, 400, "unknown_field", where)
            r = await api.call(method, path, user, json_body={}, headers=headers)
            if method != "PATCH":  # every field of a PATCH is optional: 400 "nothing to update"
                assert_error(r, 400, "missing_field", where)
            else:
                assert_error(r, 400, None, where)

            # Larger than [sidecar] max_body_bytes, with a length and chunked.
            big = b'{"card": "' + b"a" * limit + b'"}'
            assert_error(await send(big), 413, "body_too_large", where)
            assert_error(await send(_chunks(big)), 413, "body_too_large", (where, "chunked"))

            for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/json"):
                assert_error(await send("{}", content_type), 415, "unsupported_media_type", where)
            assert_error(await send(b"{}", None), 415, "unsupported_media_type", where)

        # Text that no store can hold: control characters and lone surrogates.
        for body in (
            {"name": "\ud800", "email": "a@example.com"},
            {"name": "Ada\x00", "email": "a@example.com"},
            {"name": "Ada", "email": "a\x00@example.com"},
            {"name": "Ada", "email": "\udfff@example.com"},
            {"name": "Ada", "email": "a@example.com", "address": {"line1": "x\ud83d"}},
        ):
            r = await api.call("PUT", "/v1/billing-profile", ALICE, json_body=body)
            assert_error(r, 400, "invalid_field", body)
        bad_name = {"number": "5555 5555 5555 4444", "exp_month": 1, "exp_year": NEXT_YEAR}
        for name in ("\ud800", "A\x1b[2J", "B\x7f"):
            r = await api.call(
                "POST", "/v1/payment-methods", ALICE, json_body={**bad_name, "name": name}
            )
            assert_error(r, 400, "invalid_field", name)
        r = await api.call(
            "PATCH", f"/v1/payment-methods/{method_id}", ALICE, json_body={"nickname": "\udc00"}
        )
        assert_error(r, 400, "invalid_field")


async def test_methods_routes_and_ids(env: Env) -> None:
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        wrong_methods = [
            ("PUT", "/v1/cards/verify"),
            ("GET", "/v1/cards/verify"),
            ("PUT", "/v1/payment-methods"),
            ("DELETE", "/v1/payment-methods"),
            ("POST", f"/v1/payment-methods/{method_id}"),
            ("PUT", f"/v1/payment-methods/{method_id}"),
            ("POST", "/v1/billing-profile"),
            ("DELETE", "/v1/billing-profile"),
            ("PUT", "/v1/payments"),
            ("DELETE", "/v1/payments/pay_0123"),
            ("POST", "/v1/admin/orgs/example.org"),
            ("DELETE", "/v1/admin/orgs/example.org"),
            ("POST", "/healthz"),
            ("POST", "/readyz"),
            ("POST", "/v1/keys"),
            ("POST", "/openapi.json"),
            ("POST", "/metrics"),
        ]
        for method, path in wrong_methods:
            r = await api.call(method, path, ALICE, json_body={})
            assert_error(r, 405, "method_not_allowed", (method, path))

        for path in (
            "/",
            "/v1",
            "/v1/nothing",
            "/v2/payments",
            "/v1/payments/a/b",
            "/v1/admin/orgs",
        ):
            assert_error(await api.call("GET", path, ALICE), 404, "not_found", path)

        # Ids that cannot be ours, on both engines: 404, never a store error.
        for bad in ("%00", "pm_%00x", "%ED%A0%80", "%FF", "x" * 300, "pm_..%2F..", "%20"):
            for method, path in (
                ("GET", f"/v1/payment-methods/{bad}"),
                ("DELETE", f"/v1/payment-methods/{bad}"),
                ("GET", f"/v1/payments/{bad}"),
            ):
                assert_error(await api.call(method, path, ALICE), 404, "not_found", path)
            r = await api.call(
                "PATCH", f"/v1/payment-methods/{bad}", ALICE, json_body={"nickname": "n"}
            )
            assert_error(r, 404, "not_found", bad)
        for bad in ("%00", "-x-.com", "a..b", "%ED%A0%80", "x" * 300):
            r = await api.call("GET", f"/v1/admin/orgs/{bad}", ADMIN)
            assert_error(r, 400, "invalid_domain", bad)

        # The Idempotency-Key header of POST /v1/payments.
        body = {"card": "x.y.z", "payment_method_id": method_id, "security_code": GOOD_CODE}
        for key in (None, "", "short", "has space", "k" * 129, "ключ-ключ-ключ"):
            headers = {} if key is None else {"Idempotency-Key": key}
            r = await api.call("POST", "/v1/payments", ALICE, json_body=body, headers=headers)
            assert_error(r, 400, "idempotency_key_required", key)
        # The meta endpoints still answer.
        for path in ("/healthz", "/v1/keys", "/openapi.json"):
            assert (await api.call("GET", path)).status == 200, path


async def test_card_data_errors_and_nothing_lost(env: Env) -> None:
    async with env.sidecar() as api:
        saved = await api.add_method(ALICE, VISA_OK, nickname="main")
        assert saved.status == 201, saved
        method_id = saved.body["id"]
        profile = await api.put_profile(ALICE)
        assert profile.status == 200

        cases: list[tuple[dict[str, Any], str]] = [
            ({"number": "4242 4242 4242 4241"}, "luhn_failed"),
            ({"number": "4242-4242-4242-4241"}, "luhn_failed"),
            ({"number": "5555555555554445"}, "luhn_failed"),
            ({"number": "9999 9999 9999 9995"}, "unsupported_brand"),
            ({"number": "4242 4242 42  "}, "invalid_number"),
            ({"number": "42424242424242424242"}, "invalid_number"),
            ({"number": "4242x4242x4242x4242"}, "invalid_field"),
            ({"exp_year": LAST_YEAR}, "expired_card"),
            ({"exp_month": 13}, "invalid_expiry"),
            ({"exp_month": 0}, "invalid_expiry"),
            ({"exp_month": -1}, "invalid_expiry"),
            ({"exp_year": 1999}, "invalid_expiry"),
            ({"exp_year": 2099}, "invalid_expiry"),
            ({"exp_year": 10**30}, "invalid_expiry"),
        ]
        for change, code in cases:
            r = await api.add_method(ALICE, **{"number": "5555555555554444", **change})
            assert_error(r, 400, code, change)
        assert_error(
            await api.add_method(ALICE, "4242 4242 4242 4242"), 409, "duplicate_payment_method"
        )

        path = f"/v1/payment-methods/{method_id}"
        bad_patches: list[tuple[Any, str]] = [
            ({"exp_year": LAST_YEAR}, "expired_card"),
            ({"exp_month": 13}, "invalid_expiry"),
            ({"exp_month": 0, "nickname": "lost?"}, "invalid_expiry"),
            ({"number": "5555555555554444"}, "unknown_field"),
            ({"name": "Someone Else"}, "unknown_field"),
            ({"nickname": "x" * 61}, "invalid_field"),
            ({}, "missing_field"),
            ("{", "invalid_json"),
        ]
        for patch, code in bad_patches:
            if isinstance(patch, str):
                r = await api.call("PATCH", path, ALICE, data=patch, headers=JSON)
            else:
                r = await api.call("PATCH", path, ALICE, json_body=patch)
            assert_error(r, 400, code, patch)
        bad_profiles: list[dict[str, Any]] = [
            {"name": "Ada", "email": "not-an-address"},
            {"name": "", "email": "a@example.com", "address": {"country": "GBR"}},
            {"name": "x" * 201, "email": "a@example.com"},
        ]
        for body in bad_profiles:
            r = await api.call("PUT", "/v1/billing-profile", ALICE, json_body=body)
            assert_error(r, 400, "invalid_field", body)

        listed = await api.call("GET", "/v1/payment-methods", ALICE)
        assert listed.body["data"] == [saved.body]
        assert (await api.call("GET", "/v1/billing-profile", ALICE)).body == profile.body

        # Paying: the security code and the card are checked before anything is charged.
        card = env.card([ALICE])
        for code, expected in (("12", "invalid_field"), ("7310", "invalid_security_code")):
            r = await api.pay(ALICE, card, method_id, code=code)
            assert_error(r, 400, expected, code)
        assert_error(await api.pay(ALICE, card[:-8] + "AAAAAAAA", method_id), 422, "bad_signature")
        assert_error(await api.pay(ALICE, "not a card", method_id), 400, "malformed_card")
        r = await api.pay(ALICE, env.card([ALICE], ttl=-60), method_id)
        assert_error(r, 410, "card_expired")
        assert_error(await api.pay(ALICE, card, "pm_doesnotexist"), 404, "not_found")
        assert (await api.verify(ALICE, card)).body["status"] == "payable"
        assert (await api.call("GET", "/v1/payments", ALICE)).body["data"] == []
    assert await env.charges() == []
