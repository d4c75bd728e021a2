"""The development demo's token is given only at the sidecar's own names: a page whose
name an attacker rebinds to 127.0.0.1 is same-origin with itself, but not us."""

from __future__ import annotations

import pytest

from .harness import Api, Env, Reply

pytestmark = pytest.mark.asyncio


async def _token(api: Api, host: str, browser: bool = True) -> Reply:
    # What a browser sends from a page at http://<host>/ to its own origin.
    headers = {"Host": host}
    if browser:
        headers |= {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    return await api.call("POST", "/demo/token", headers=headers)


async def test_demo_token_only_at_the_listen_address_or_a_webmail_origin(env: Env) -> None:
    cfg = env.config
    assert cfg.sidecar.demo_maildir is not None  # inboxpay init writes a demo config
    async with env.sidecar() as api:
        for host in ("rebind.attacker.example:8080", "127.0.0.1:1", "localhost", "[::1]:8080"):
            for browser in (True, False):
                r = await _token(api, host, browser)
                assert (r.status, r.code) == (403, "demo_host_not_allowed"), (host, r)
                assert "token" not in (r.body or {})

        listen = await _token(api, f"127.0.0.1:{cfg.sidecar.port}")
        assert listen.status == 200, listen
        assert listen.body["user"] == cfg.sidecar.demo_user
        # A configured webmail origin's host (harness: https://mail.example.com).
        assert (await _token(api, "Mail.Example.com")).status == 200
