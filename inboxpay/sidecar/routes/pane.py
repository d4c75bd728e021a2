"""The task pane webmail embeds: ``/pane/`` and its assets, under a strict CSP.

The pane is static HTML, CSS and JavaScript modules from ``inboxpay/sidecar/static/``;
the only thing rendered per request is a ``<meta>`` that tells the script which webmail
origins may talk to it and which invoice hosts each partner allows. The pane must learn
those from us, never from the parent it is checking. The embedding protocol is in
docs/embedding.md.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

from aiohttp import web

from inboxpay.config import Config
from inboxpay.sidecar.state import CONFIG

routes = web.RouteTableDef()

#: Marker in pane.html replaced by the (HTML-escaped) JSON configuration.
CONFIG_MARKER = "__INBOXPAY_CONFIG__"

_TYPES = {
    "html": "text/html",
    "js": "text/javascript",
    "css": "text/css",
}

#: The pane's JavaScript modules: pane.js, the entry point, imports the others.
PANE_MODULES = (
    "pane.js",
    "api.js",
    "config.js",
    "embed.js",
    "ui.js",
    "review.js",
    "wallet.js",
    "pay.js",
    "result.js",
    "validate.js",
    "statuses.js",
)

#: The assets /pane/ serves. A fixed list, so no request path ever reaches the filesystem.
PANE_ASSETS = (*PANE_MODULES, "pane.css")


@cache
def asset(name: str) -> str:
    """A file from the package's static folder (read once; they ship with the package)."""
    return resources.files("inboxpay.sidecar").joinpath("static", name).read_text("utf-8")


def csp(frame_ancestors: Sequence[str], extra: Mapping[str, str] | None = None) -> str:
    """The pane's Content-Security-Policy: nothing but our own files and API.

    ``connect-src 'self'`` keeps the bearer token from being sent anywhere else even if
    a script were injected; ``form-action 'none'`` stops a form from ever turning card
    data into a URL or a cross-site post, should its submit handler fail to load.
    """
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        "connect-src": "'self'",
        "form-action": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": " ".join(frame_ancestors) or "'none'",
    }
    directives.update(extra or {})
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The pane holds card data in its fields: no copy of any response in a cache.
        "Cache-Control": "no-store",
    }


def static_response(name: str, policy: str, text: str | None = None) -> web.Response:
    return web.Response(
        text=asset(name) if text is None else text,
        content_type=_TYPES[name.rpartition(".")[2]],
        charset="utf-8",
        headers=security_headers(policy),
    )


def pane_config(config: Config) -> dict[str, object]:
    """What pane.js needs from the server: who may embed it, where invoice links may go."""
    return {
        "origins": list(config.sidecar.webmail_origins),
        "invoice_hosts": {p.id: list(p.invoice_url_hosts) for p in config.partners},
    }


def pane_policy(config: Config) -> str:
    return csp(config.sidecar.webmail_origins)


@routes.get("/pane")
async def pane_redirect(request: web.Request) -> web.Response:
    # The page's relative asset and API paths need the trailing slash.
    raise web.HTTPPermanentRedirect("pane/")


@routes.get("/pane/")
async def pane_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    meta = html.escape(json.dumps(pane_config(config), separators=(",", ":")), quote=True)
    page = asset("pane.html").replace(CONFIG_MARKER, meta)
    return static_response("pane.html", pane_policy(config), page)


@routes.get("/pane/{name}")
async def pane_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in PANE_ASSETS:
        raise web.HTTPNotFound()
    return static_response(name, pane_policy(request.app[CONFIG]))
