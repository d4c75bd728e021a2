"""DEVELOPMENT ONLY: a tiny demo inbox at ``/demo/`` that shows the whole product.

It lists the messages in ``[sidecar] demo_maildir`` (``new/`` and ``cur/``, newest
first), verifies each one's ``InboxPay-Card`` here on the server, and opens the task
pane for those that verify, as a webmail would: in an iframe, posting the card and a
token. The token comes from ``POST /demo/token``, which mints one for
``[sidecar] demo_user`` for anyone who can reach the sidecar. That is why these routes
exist only when ``demo_maildir`` is configured, and why the config refuses
``demo_maildir`` unless the sidecar listens on loopback.
"""

from __future__ import annotations

import asyncio
import email.errors
import html
import re
import urllib.parse
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import cache
from importlib import resources
from pathlib import Path

from aiohttp import web
from joserfc.jwk import OKPKey

from inboxpay.card.header import HEADER, VERDICT_HEADER, CardError, Verifier
from inboxpay.config import Config
from inboxpay.sidecar.auth import load_issuer_key, mint
from inboxpay.sidecar.errors import Forbidden, ServiceUnavailable
from inboxpay.sidecar.http import json_response
from inboxpay.sidecar.routes.pane import csp, static_response
from inboxpay.sidecar.state import CONFIG, services

routes = web.RouteTableDef()

DEMO_ASSETS = ("demo.js", "demo.css")
#: Newest messages listed; a demo inbox needs no paging.
MAX_MESSAGES = 100
#: Bytes read from each file to find its header section.
MAX_HEADER_BYTES = 256 * 1024
TOKEN_LIFETIME = 300
_WHITESPACE = re.compile(r"\s+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class DemoMessage:
    name: str
    sender: str
    subject: str
    date: str
    card: str | None  # the whitespace-free card value, only when it verifies
    card_note: str  # why there is no button, or "" when there is one
    verdict: str


def demo_policy() -> str:
    # The demo frames the pane from its own origin and is itself framed by nobody.
    return csp((), {"frame-src": "'self'"})


def _decoded(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return str(value)  # undecodable encoded-words: show them raw rather than nothing


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_HEADER_BYTES)
    end = _HEADER_END.search(data)
    return data[: end.end()] if end else data


def _card(msg: Message, verifier: Verifier) -> tuple[str | None, str]:
    values = msg.get_all(HEADER) or []
    if not values:
        return None, "no InboxPay card"
    if len(values) > 1:
        # docs/card-format.md: more than one field means none.
        return None, "more than one InboxPay card: ignored"
    card = _WHITESPACE.sub("", str(values[0]))
    try:
        verifier.verify(card)
    except CardError as e:
        return None, f"card does not verify ({e.code})"
    return card, ""


def scan(maildir: Path, verifier: Verifier) -> list[DemoMessage]:
    """The newest messages of a Maildir, each with its card when that card verifies."""
    files: list[tuple[float, Path]] = []
    for sub in ("new", "cur"):
        folder = maildir / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            files.append((path.stat().st_mtime, path))
    files.sort(key=lambda item: (item[0], item[1].name), reverse=True)
    messages = []
    for _, path in files[:MAX_MESSAGES]:
        try:
            msg = BytesHeaderParser(policy=compat32).parsebytes(_head(path))
        except OSError:
            continue  # delivered and removed while we looked: not worth an error page
        card, note = _card(msg, verifier)
        messages.append(
            DemoMessage(
                name=path.name,
                sender=_decoded(msg, "From"),
                subject=_decoded(msg, "Subject") or "(no subject)",
                date=_decoded(msg, "Date"),
                card=card,
                card_note=note,
                verdict=_decoded(msg, VERDICT_HEADER),
            )
        )
    return messages


def _item(m: DemoMessage) -> str:
    e = html.escape
    if m.card:
        action = (
            f'<button type="button" class="pay" data-card="{e(m.card)}" '
            f'aria-describedby="subject-{e(m.name)}">Review and pay</button>'
        )
    else:
        action = f'<span class="note">{e(m.card_note)}</span>'
    verdict = f'<p class="verdict">InboxPay-Verdict: {e(m.verdict)}</p>' if m.verdict else ""
    return (
        '<li class="message">'
        f'<p class="from">{e(m.sender) or "(unknown sender)"}</p>'
        f'<p class="subject" id="subject-{e(m.name)}">{e(m.subject)}</p>'
        f'<p class="date">{e(m.date)}</p>{verdict}'
        f'<div class="action">{action}</div></li>'
    )


def render(config: Config, messages: list[DemoMessage], origin_ok: bool, origin: str) -> str:
    e = html.escape
    sc = config.sidecar
    maildir = str(sc.demo_maildir)
    if messages:
        listing = '<ul class="messages">' + "".join(_item(m) for m in messages) + "</ul>"
    else:
        listing = (
            f"<p>No messages in <code>{e(maildir)}</code> (new/ or cur/). Deliver one with "
            f"<code>inboxpay send-sample --to {e(sc.demo_user)}</code>, or copy any message "
            f"file with an InboxPay-Card header into <code>{e(maildir)}/new/</code>.</p>"
        )
    warning = ""
    if not origin_ok:
        warning = (
            f'<p class="problem" role="alert">This page is open at <code>{e(origin)}</code>, '
            "which is not in <code>[sidecar] webmail_origins</code>, so the pane refuses to "
            "be framed here. Add it, or open the address the sidecar printed.</p>"
        )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>InboxPay demo inbox (development only)</title>
<link rel="stylesheet" href="demo.css">
<script type="module" src="demo.js"></script>
</head>
<body>
<p class="devonly" role="note"><strong>Development only.</strong> This demo inbox gives a
user token for <code>{e(sc.demo_user)}</code> to anyone who can reach this sidecar. Never
set <code>[sidecar] demo_maildir</code> in production.</p>
<header>
<h1>Demo inbox of {e(sc.demo_user)}</h1>
<p>Messages in <code>{e(maildir)}</code>, newest first. <a href="./">Refresh</a></p>
{warning}
</header>
<main class="layout">
<section aria-labelledby="messages-title">
<h2 id="messages-title">Messages</h2>
{listing}
</section>
<section aria-labelledby="pane-title" class="pane-box">
<h2 id="pane-title">InboxPay</h2>
<p id="demo-status" role="status">Choose <strong>Review and pay</strong> on a message.</p>
<iframe id="pane" title="InboxPay: review and pay" src="../pane/"></iframe>
</section>
</main>
</body>
</html>
"""


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def demo_hosts(config: Config) -> frozenset[str]:
    """The Host headers the demo may be reached with: the listen address and the netloc of
    each webmail origin (browsers leave a default port out of both Origin and Host)."""
    sc = config.sidecar
    listen = f"[{sc.host}]" if ":" in sc.host else sc.host
    hosts = {f"{listen}:{sc.port}".lower()}
    hosts.update(urllib.parse.urlsplit(o).netloc.lower() for o in sc.webmail_origins)
    return frozenset(hosts)


def host_allowed(request: web.Request, config: Config) -> bool:
    # DNS rebinding: a page of attacker.example whose name now resolves to 127.0.0.1 is
    # same-origin with itself, and its Host header says so. Only our own names pass.
    return request.headers.get("Host", "").strip().lower() in demo_hosts(config)


@cache
def asset(name: str) -> str:
    """One of :data:`DEMO_ASSETS`, from this package's static folder (read once)."""
    return resources.files("inboxpay.dev").joinpath("static", name).read_text("utf-8")


@routes.get("/demo")
async def demo_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("demo/")


@routes.get("/demo/")
async def demo_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    assert config.sidecar.demo_maildir is not None  # the routes exist only with one
    messages = await asyncio.to_thread(scan, config.sidecar.demo_maildir, services(request).cards)
    origin = _own_origin(request)
    page = render(config, messages, origin in config.sidecar.webmail_origins, origin)
    return static_response("demo.html", demo_policy(), page)


@routes.get("/demo/{name}")
async def demo_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in DEMO_ASSETS:
        raise web.HTTPNotFound()
    return static_response(name, demo_policy(), asset(name))


@routes.post("/demo/token")
async def demo_token(request: web.Request) -> web.Response:
    """A short-lived token for ``demo_user``, for the demo page only (same origin)."""
    # Another site's page must not obtain a token through the visitor's browser: browsers
    # label every fetch with Sec-Fetch-Site and cross-origin posts with Origin.
    config = request.app[CONFIG]
    if not host_allowed(request, config):
        raise Forbidden(
            "the demo token is only given at the sidecar's listen address or a webmail origin",
            "demo_host_not_allowed",
        )
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if (site is not None and site != "same-origin") or (
        origin is not None and origin != _own_origin(request)
    ):
        raise Forbidden("the demo token is for the demo page only", "demo_same_origin_only")
    sc = config.sidecar
    for issuer in sc.issuers:
        key = load_issuer_key(issuer)
        if isinstance(key, OKPKey) and not key.is_private:
            continue  # a public key verifies tokens but cannot mint them
        lifetime = min(TOKEN_LIFETIME, sc.token_max_lifetime)
        token = mint(issuer, key, sc.audience, sc.demo_user, lifetime)
        response = json_response({"token": token, "user": sc.demo_user, "expires_in": lifetime})
        response.headers["Cache-Control"] = "no-store"
        return response
    raise ServiceUnavailable(
        "no [[sidecar.issuers]] key_file holds a private key to mint demo tokens",
        "demo_no_issuer_key",
    )
