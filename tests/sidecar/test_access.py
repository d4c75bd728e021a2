"""Who may call what: bearer tokens, card recipients, owners of saved cards and payments,
administrators, the per-organization switch, and CORS for webmail origins."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from joserfc.jwk import OctKey, OKPKey

from inboxpay.config import Issuer
from inboxpay.sidecar.auth import load_issuer_key, mint
from tests.support.sandbox import Sandbox

from .harness import ADMIN, ALICE, BOB, MALLORY, ORIGIN, Api, Env, new_key

pytestmark = pytest.mark.asyncio

CAROL = "carol@example.net"  # another organization


@pytest_asyncio.fixture
async def sqlite_env(tmp_path: Path, shared_sandbox: Sandbox) -> Env:
    """For what does not depend on the store engine."""
    return await Env.create(tmp_path, "sqlite:///inboxpay.db", shared_sandbox)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bad_authorizations(env: Env) -> dict[str, str | None]:
    """Authorization header values that must all be refused (None: no header)."""
    cfg = env.config
    issuer = cfg.sidecar.issuers[0]
    key = load_issuer_key(issuer)
    aud = cfg.sidecar.audience
    stranger = OKPKey.generate_key("Ed25519", private=True)
    hs_issuer = Issuer(issuer.iss, "HS256", issuer.key_file)
    hs_key = OctKey.import_key(secrets.token_bytes(32))
    now = int(time.time())
    unsigned = {"iss": issuer.iss, "aud": aud, "sub": ALICE, "iat": now, "exp": now + 60}
    bearer = {
        "expired": mint(issuer, key, aud, ALICE, -120),
        "bad signature": mint(issuer, stranger, aud, ALICE, 60),
        "wrong audience": mint(issuer, key, "someone-else", ALICE, 60),
        "HS256 for an EdDSA issuer": mint(hs_issuer, hs_key, aud, ALICE, 60),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(unsigned)}.",
        "unknown issuer": mint(Issuer("elsewhere", "EdDSA", issuer.key_file), key, aud, ALICE, 60),
        "too long a lifetime": mint(issuer, key, aud, ALICE, 86400),
        "subject not an address": mint(issuer, key, aud, "alice", 60),
        "garbage": "not.a.token",
    }
    return {
        "none": None,
        "not bearer": "Basic " + base64.b64encode(b"alice:pw").decode(),
        "empty bearer": "Bearer ",
        **{name: f"Bearer {token}" for name, token in bearer.items()},
    }


async def test_bad_tokens_are_401(sqlite_env: Env) -> None:
    env = sqlite_env
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        card = env.card([ALICE])
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", "/v1/payment-methods", None),
            ("POST", "/v1/cards/verify", {"card": card}),
            ("GET", "/v1/payments", None),
            ("GET", "/v1/billing-profile", None),
            ("GET", f"/v1/payment-methods/{method_id}", None),
            ("GET", "/v1/admin/orgs/example.com", None),
        ]
        for name, authorization in bad_authorizations(env).items():
            headers = {} if authorization is None else {"Authorization": authorization}
            for method, path, body in calls:
                r = await api.call(method, path, json_body=body, headers=headers)
                assert r.status == 401, (name, path, r)
                assert r.code in ("missing_token", "invalid_token"), (name, r)
            pay_body = {"card": card, "payment_method_id": method_id, "security_code": "731"}
            r = await api.call(
                "POST", "/v1/payments", json_body=pay_body, headers=headers, key=new_key()
            )
            assert r.status == 401, (name, r)
        # The same calls with a good token work, so the 401s were about the tokens.
        for method, path, body in calls[:-1]:
            assert (await api.call(method, path, ALICE, json_body=body)).status == 200, path
    assert await env.charges() == []


async def test_recipients_and_owners(env: Env) -> None:
    async with env.sidecar() as api:
        alice_method = await api.method(ALICE)
        bob_method = await api.method(BOB)
        card = env.card([ALICE])

        for r in (await api.verify(MALLORY, card), await api.pay(MALLORY, card, bob_method)):
            assert (r.status, r.code) == (403, "not_a_recipient"), r

        # Addresses are case-insensitive: the token's subject and the card's recipients.
        assert (await api.verify("Alice@EXAMPLE.com", card)).body["status"] == "payable"
        paid = await api.pay(ALICE, card, alice_method)
        assert paid.body["status"] == "succeeded", paid
        payment_id = paid.body["id"]

        # Bob is no owner of Alice's card or payment: they do not exist for him.
        path = f"/v1/payment-methods/{alice_method}"
        for r in (
            await api.call("GET", path, BOB),
            await api.call("PATCH", path, BOB, json_body={"nickname": "mine"}),
            await api.call("DELETE", path, BOB),
            await api.payment(BOB, payment_id),
        ):
            assert (r.status, r.code) == (404, "not_found"), r
        listed = await api.call("GET", "/v1/payment-methods", BOB)
        assert [m["id"] for m in listed.body["data"]] == [bob_method]
        assert (await api.call("GET", "/v1/payments", BOB)).body["data"] == []

        # Paying a card addressed to Bob with Alice's saved card.
        bobs_card = env.card([BOB])
        r = await api.pay(BOB, bobs_card, alice_method)
        assert (r.status, r.code) == (404, "not_found"), r
        assert (await api.verify(BOB, bobs_card)).body["status"] == "payable"

        # Alice's things are untouched.
        mine = await api.call("GET", path, ALICE)
        assert (mine.status, mine.body["nickname"]) == (200, "")
        assert (await api.payment(ALICE, payment_id)).body["status"] == "succeeded"
    assert len(await env.charges()) == 1


async def _org(api: Api, user: str, domain: str, enabled: bool | None = None) -> Any:
    if enabled is None:
        return await api.call("GET", f"/v1/admin/orgs/{domain}", user)
    body = {"pay_enabled": enabled}
    return await api.call("PUT", f"/v1/admin/orgs/{domain}", user, json_body=body)


async def test_admin_switches_an_organization_off(env: Env) -> None:
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        carol_method = await api.method(CAROL)
        card = env.card([ALICE, CAROL])

        for r in (
            await _org(api, ALICE, "example.com"),
            await _org(api, ALICE, "example.com", False),
        ):
            assert (r.status, r.code) == (403, "not_admin"), r

        off = await _org(api, ADMIN, "example.com", False)
        assert off.status == 200, off
        assert (off.body["pay_enabled"], off.body["source"]) == (False, "store")
        shown = await _org(api, ADMIN, "EXAMPLE.com")
        assert (shown.body["pay_enabled"], shown.body["source"]) == (False, "store")

        assert (await api.verify(ALICE, card)).body["status"] == "org_disabled"
        r = await api.pay(ALICE, card, method_id)
        assert (r.status, r.code) == (403, "org_disabled"), r
        # Another organization on the same card is not affected.
        assert (await api.verify(CAROL, card)).body["status"] == "payable"

        on = await _org(api, ADMIN, "example.com", True)
        assert on.body["pay_enabled"] is True
        assert (await api.verify(ALICE, card)).body["status"] == "payable"
        r = await api.pay(ALICE, card, method_id)
        assert (r.status, r.body["status"]) == (201, "succeeded"), r
        assert (await api.pay(CAROL, card, carol_method)).code == "already_paid"
    assert len(await env.charges()) == 1


async def test_config_default_off_and_store_override(env: Env) -> None:
    env.edit(lambda d: d.update(orgs={"example.com": {"pay_enabled": False}}))
    async with env.sidecar() as api:
        method_id = await api.method(ALICE)
        card = env.card([ALICE])
        shown = await _org(api, ADMIN, "example.com")
        assert (shown.body["pay_enabled"], shown.body["source"]) == (False, "config")
        assert (await api.verify(ALICE, card)).body["status"] == "org_disabled"
        r = await api.pay(ALICE, card, method_id)
        assert (r.status, r.code) == (403, "org_disabled"), r

        on = await _org(api, ADMIN, "example.com", True)
        assert (on.status, on.body["source"]) == (200, "store")
        assert (await api.verify(ALICE, card)).body["status"] == "payable"
        r = await api.pay(ALICE, card, method_id)
        assert (r.status, r.body["status"]) == (201, "succeeded"), r

    # The store's setting outlives the process: a restarted sidecar keeps it over config.
    async with env.sidecar() as api:
        assert (await api.verify(ALICE, env.card([ALICE]))).body["status"] == "payable"
    assert len(await env.charges()) == 1


async def test_cors_preflight(sqlite_env: Env) -> None:
    async with sqlite_env.sidecar() as api:
        ask = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        ok = await api.call("OPTIONS", "/v1/payments", headers={"Origin": ORIGIN, **ask})
        assert ok.status == 204, ok
        assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in ok.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]

        for origin in ("https://evil.example", ORIGIN + ".evil.example", "null"):
            no = await api.call("OPTIONS", "/v1/payments", headers={"Origin": origin, **ask})
            assert no.status == 403, no
            assert no.code == "cors_denied"
            assert "Access-Control-Allow-Origin" not in no.headers

        # Actual requests: the allowed origin is named, another gets no CORS header.
        r = await api.call("GET", "/v1/payment-methods", ALICE, headers={"Origin": ORIGIN})
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        r = await api.call(
            "GET", "/v1/payment-methods", ALICE, headers={"Origin": "https://evil.example"}
        )
        assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
