"""The pane's and the demo's HTTP side, without a browser: headers, the rendered
configuration, what the static files may not contain, and when the demo exists."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import pytest
from aiohttp import web

from inboxpay import config as config_module
from inboxpay.errors import ConfigError
from inboxpay.sidecar.app import create_app
from tests.support.scripts import banned_uses

from .world import World, origin


def get(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def static(name: str) -> str:
    return resources.files("inboxpay.sidecar").joinpath("static", name).read_text("utf-8")


def demo_static(name: str) -> str:
    return resources.files("inboxpay.dev").joinpath("static", name).read_text("utf-8")


def test_pane_headers(world: World) -> None:
    expected_csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; "
        f"frame-ancestors {origin(world.webmail_port)} {world.sidecar}"
    )
    for path, kind in (
        ("/pane/", "text/html"),
        ("/pane/pane.js", "text/javascript"),
        ("/pane/validate.js", "text/javascript"),
        ("/pane/statuses.js", "text/javascript"),
        ("/pane/pane.css", "text/css"),
    ):
        status, headers, _ = get(world.sidecar + path)
        assert status == 200, path
        assert headers["Content-Type"] == f"{kind}; charset=utf-8"
        assert headers["Content-Security-Policy"] == expected_csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
    assert get(world.sidecar + "/pane/app.py")[0] == 404
    assert get(world.sidecar + "/pane/..%2Fapp.py")[0] == 404
    status, headers, _ = get(world.sidecar + "/pane")
    assert (status, headers["Location"]) == (308, "pane/")


def test_pane_learns_origins_and_invoice_hosts_from_the_server(world: World) -> None:
    _, _, page = get(world.pane_url)
    match = re.search(r'<meta name="inboxpay-config" content="([^"]*)">', page)
    assert match is not None
    value = json.loads(html.unescape(match.group(1)))
    assert value["origins"] == [origin(world.webmail_port), world.sidecar]
    assert value["invoice_hosts"]["xero"] == ["in.xero.com"]


def test_static_files_keep_the_csp_honest() -> None:
    page = static("pane.html")
    # No inline script, style or handler: the CSP allows none, and must not need to.
    assert re.findall(r"<script\b[^>]*>", page) == ['<script type="module" src="pane.js">']
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from elsewhere
    # Every pane module is checked in tests/unit/test_pane_modules.py; the demo's here.
    for name in ("pane.js", "demo.js"):
        script = demo_static(name) if name.startswith("demo.") else static(name)
        assert banned_uses(script) == [], name
    css = static("pane.css") + demo_static("demo.css")
    assert "@import" not in css and "url(" not in css


def test_demo_routes_exist_only_with_a_demo_maildir(world: World) -> None:
    with_demo = create_app(world.config)
    plain = dataclasses.replace(
        world.config, sidecar=dataclasses.replace(world.config.sidecar, demo_maildir=None)
    )
    without = create_app(plain)

    def paths(app: web.Application) -> set[str]:
        return {r.canonical for r in app.router.resources()}

    assert "/demo/" in paths(with_demo) and "/demo/token" in paths(with_demo)
    assert not any(p.startswith("/demo") for p in paths(without))
    assert "/pane/" in paths(without)


def test_demo_refuses_a_non_loopback_listen_address(world: World, tmp_path: Path) -> None:
    text = (world.root / "inboxpay.toml").read_text()
    other = world.root / "exposed.toml"
    other.write_text(
        re.sub(
            r'^listen = "127\.0\.0\.1:(\d+)"$',
            r'listen = "0.0.0.0:\1"',
            text,
            count=1,
            flags=re.MULTILINE,
        )
    )
    with pytest.raises(ConfigError, match=r"\[sidecar\] demo_maildir"):
        config_module.load(other)


def test_demo_token_is_for_the_demo_page_only(world: World) -> None:
    url = f"{world.sidecar}/demo/token"
    assert get(url, "POST", {"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert get(url, "POST", {"Origin": "http://127.0.0.1:1"})[0] == 403
    status, headers, body = get(
        url, "POST", {"Sec-Fetch-Site": "same-origin", "Origin": world.sidecar}
    )
    assert status == 200 and headers["Cache-Control"] == "no-store"
    token = json.loads(body)["token"]
    assert json.loads(body)["user"] == "you@localhost"
    assert world.api("GET", "/v1/payment-methods", token)[0] == 200
