"""A tiny test "webmail": an aiohttp app that embeds the pane from another origin and
plays the parent's side of docs/embedding.md, served on two ports in a thread of its own.

- ``/webmail/{case}`` frames the pane and, on ``inboxpay:ready``, posts
  ``inboxpay:open`` with the case's card and token (unless the case says ``manual``);
  every message from the pane lands in ``window.received``. With ``stranger`` it also
  holds a hidden iframe from the stranger port that posts its own ``inboxpay:open`` to
  the pane, which must ignore it.
- ``/stranger-frame/{case}`` is that iframe; ``/stranger-parent/{case}`` frames the pane
  directly from the stranger's origin, which the pane's ``frame-ancestors`` refuses.

The same app answers on both ports; only the port (the origin) differs, and only the
webmail port is in ``[sidecar] webmail_origins``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Case:
    card: str
    token: str
    pane_url: str
    pane_origin: str
    manual: bool = False  # wait for the test to call openPane()
    stranger_url: str = ""


def _script_json(value: Any) -> str:
    # Inside <script>, "</" would end the element: escape it.
    return json.dumps(value).replace("</", "<\\/")


_WEBMAIL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test webmail</title>
<style>
html, body {{ margin: 0; height: 100%; }}
#pane {{ border: 0; display: block; width: 100%; height: 100vh; }}
#stranger {{ display: none; }}
</style></head>
<body>
<iframe id="pane" title="InboxPay: review and pay" src="{pane_url}"></iframe>
{stranger}
<script>
const CASE = {case};
window.received = [];
const pane = document.getElementById("pane");
function openPane() {{
  pane.contentWindow.postMessage(
    {{ type: "inboxpay:open", card: CASE.card, token: CASE.token }}, CASE.pane_origin);
}}
window.addEventListener("message", (event) => {{
  if (event.origin !== CASE.pane_origin || event.source !== pane.contentWindow) return;
  window.received.push(event.data);
  if (event.data.type === "inboxpay:ready" && !CASE.manual) openPane();
  if (event.data.type === "inboxpay:token-needed") {{
    pane.contentWindow.postMessage(
      {{ type: "inboxpay:token", token: CASE.token }}, CASE.pane_origin);
  }}
}});
</script>
</body></html>
"""

_STRANGER_FRAME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stranger</title></head><body>
<script>
const CASE = {case};
// Keep trying for a while, so some posts surely arrive after the pane is listening.
let left = 15;
const timer = setInterval(() => {{
  parent[0].postMessage({{ type: "inboxpay:open", card: CASE.card, token: CASE.token }}, "*");
  if (--left === 0) clearInterval(timer);
}}, 100);
</script></body></html>
"""

_STRANGER_PARENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stranger webmail</title></head><body>
<iframe id="pane" title="InboxPay" src="{pane_url}"></iframe>
</body></html>
"""


class Webmail:
    """The test webmail on ``webmail_port`` and ``stranger_port``, until ``stop()``."""

    def __init__(self, webmail_port: int, stranger_port: int) -> None:
        self.ports = (webmail_port, stranger_port)
        self._cases: dict[str, Case] = {}
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-webmail", daemon=True)

    def add(self, case: Case) -> str:
        case_id = secrets.token_hex(8)
        self._cases[case_id] = case
        return case_id

    def url(self, case_id: str, page: str = "webmail", stranger: bool = False) -> str:
        return f"http://127.0.0.1:{self.ports[1 if stranger else 0]}/{page}/{case_id}"

    # --- pages ---

    def _case(self, request: web.Request) -> Case:
        case = self._cases.get(request.match_info["case"])
        if case is None:
            raise web.HTTPNotFound()
        return case

    async def _webmail(self, request: web.Request) -> web.Response:
        case = self._case(request)
        stranger = (
            f'<iframe id="stranger" title="stranger" src="{case.stranger_url}"></iframe>'
            if case.stranger_url
            else ""
        )
        text = _WEBMAIL.format(
            pane_url=case.pane_url, stranger=stranger, case=_script_json(asdict(case))
        )
        return web.Response(text=text, content_type="text/html")

    async def _stranger_frame(self, request: web.Request) -> web.Response:
        text = _STRANGER_FRAME.format(case=_script_json(asdict(self._case(request))))
        return web.Response(text=text, content_type="text/html")

    async def _stranger_parent(self, request: web.Request) -> web.Response:
        text = _STRANGER_PARENT.format(pane_url=self._case(request).pane_url)
        return web.Response(text=text, content_type="text/html")

    async def _favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)  # no 404 noise in the console we inspect

    # --- lifecycle ---

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._started.set()
        self._loop.run_forever()
        if self._runner is not None:
            self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/webmail/{case}", self._webmail)
        app.router.add_get("/stranger-frame/{case}", self._stranger_frame)
        app.router.add_get("/stranger-parent/{case}", self._stranger_parent)
        app.router.add_get("/favicon.ico", self._favicon)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for port in self.ports:
            await web.TCPSite(self._runner, "127.0.0.1", port).start()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the test webmail did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
