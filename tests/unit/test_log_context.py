"""The log context: the MTA's queue id on every line logged during a milter message, and
the request id on every line logged during a sidecar request, whichever module logs it."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Iterator
from socket import AF_INET
from typing import Any

import Milter
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from Milter import testctx

from inboxpay import logs
from inboxpay.dns import StaticResolver
from inboxpay.milter.analyze import Limits, analyze
from inboxpay.milter.decide import Action, Verdict
from inboxpay.milter.edits import Edits
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.filter import InboxPayMilter
from inboxpay.milter.pipeline import Outcome
from inboxpay.sidecar.metrics import METRICS, Metrics
from inboxpay.sidecar.middleware import error_middleware

QUEUE_ID = "4QzX7p1Lk2z9"


class Ctx(testctx.TestCtx):  # type: ignore[misc]
    """libmilter's context, with the edits at eom ignored."""

    def chgheader(self, field: str, idx: int, value: str) -> None:
        pass

    def addheader(self, field: str, value: str, idx: int) -> None:
        pass


@pytest.fixture(autouse=True)
def fresh_options(monkeypatch: pytest.MonkeyPatch) -> None:
    # TestCtx hands its class-level option list to negotiate(), which edits it in place.
    monkeypatch.setattr(testctx.TestCtx, "default_opts", [Milter.CURR_ACTS, 0x1FFFFF, 0, 0])


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every INFO+ line, with the log context applied as ``logs.setup`` applies it."""
    handler = Collect()
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)
    logs.unbind()


def analyzing(facts: MessageFacts) -> Outcome:
    """The pipeline's first step for real, with a DMARC lookup that times out: analyze.py
    logs that, a module below the milter callbacks."""
    resolver = StaticResolver(failing=["_dmarc.post.xero.test"])
    evidence, _ = analyze(facts, resolver, (), Limits())
    return Outcome(evidence, Verdict(Action.PASS), Edits())


def connect(monkeypatch: pytest.MonkeyPatch) -> Ctx:
    monkeypatch.setattr(Milter, "factory", functools.partial(InboxPayMilter, analyzing, 65536))
    ctx = Ctx()
    ctx._negotiate()
    ctx._stage = Milter.M_CONNECT
    Milter.connect_callback(ctx, "mx.post.xero.test", AF_INET, ("192.0.2.10", 40000))
    ctx._stage = Milter.M_HELO
    ctx.getpriv().hello("mx.post.xero.test")
    ctx._stage = None
    return ctx


def message(ctx: Ctx, queue_id: str | None) -> None:
    """One transaction; like Postfix by default, the queue id comes with the first RCPT."""
    ctx._macros.pop("i", None)
    ctx._envfrom("<bounce@post.xero.test>")
    if queue_id is not None:
        ctx._setsymval("i", queue_id)
    ctx._envrcpt("<bob@example.test>")
    ctx._header("From", " Xero <billing@post.xero.test>")
    ctx._eoh()
    ctx.getpriv().body(b"<p>hello</p>\r\n")
    assert ctx._eom() == Milter.ACCEPT


def lines(records: list[logging.LogRecord], text: str) -> list[logging.LogRecord]:
    return [r for r in records if r.getMessage().startswith(text)]


def test_queue_id_is_on_lines_logged_by_deeper_modules(
    monkeypatch: pytest.MonkeyPatch, records: list[logging.LogRecord]
) -> None:
    ctx = connect(monkeypatch)
    message(ctx, QUEUE_ID)
    logging.getLogger("inboxpay.test").info("after the message")

    (dmarc,) = lines(records, "DMARC lookup for")
    assert dmarc.name == "inboxpay.milter.analyze"
    assert getattr(dmarc, "queue_id", None) == QUEUE_ID
    (done,) = lines(records, "message processed")
    assert getattr(done, "queue_id", None) == QUEUE_ID
    (after,) = lines(records, "after the message")
    assert not hasattr(after, "queue_id")
    # As written to the journal.
    entry = json.loads(logs.JsonFormatter().format(dmarc))
    assert entry["queue_id"] == QUEUE_ID and entry["logger"] == "inboxpay.milter.analyze"


def test_the_next_message_does_not_inherit_the_queue_id(
    monkeypatch: pytest.MonkeyPatch, records: list[logging.LogRecord]
) -> None:
    ctx = connect(monkeypatch)
    message(ctx, QUEUE_ID)
    message(ctx, None)  # an MTA that never names it
    message(ctx, "5AbC")
    Milter.close_callback(ctx)
    ids = [getattr(r, "queue_id", None) for r in lines(records, "DMARC lookup for")]
    assert ids == [QUEUE_ID, None, "5AbC"]


def test_an_extra_field_wins_and_contexts_nest(records: list[logging.LogRecord]) -> None:
    log = logging.getLogger("inboxpay.test")
    with logs.context(request_id="outer"):
        with logs.context(payment="pay_1"):
            log.info("inner")
        log.info("explicit", extra={"request_id": "mine"})
    log.info("outside")
    inner, explicit, outside = records
    assert (getattr(inner, "request_id", None), getattr(inner, "payment", None)) == (
        "outer",
        "pay_1",
    )
    assert getattr(explicit, "request_id", None) == "mine"
    assert not hasattr(explicit, "payment")
    assert not hasattr(outside, "request_id")


def test_key_value_lines_carry_the_context(records: list[logging.LogRecord]) -> None:
    with logs.context(queue_id=QUEUE_ID):
        logging.getLogger("inboxpay.dns").warning("slow answer", extra={"ms": 812})
    line = logs.KeyValueFormatter().format(records[0])
    assert line == f'warning inboxpay.dns: slow answer ms=812 queue_id="{QUEUE_ID}"'


@pytest.mark.asyncio
async def test_request_id_is_on_lines_logged_inside_handlers(
    records: list[logging.LogRecord],
) -> None:
    deeper = logging.getLogger("inboxpay.sidecar.paying")

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0.01)  # let the other requests interleave
        deeper.info("paying", extra={"n": request.query["n"]})
        return web.json_response({})

    async def failing(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = web.Application(middlewares=[error_middleware()])
    app[METRICS] = Metrics()
    app.router.add_get("/pay", handler)
    app.router.add_get("/fail", failing)
    async with TestClient(TestServer(app)) as client:

        async def call(n: int) -> Any:
            r = await client.get(f"/pay?n={n}", headers={"X-Request-Id": f"req-{n}"})
            return r.headers["X-Request-Id"]

        assert await asyncio.gather(*(call(n) for n in range(5))) == [f"req-{n}" for n in range(5)]
        # A caller's id that is not a short safe token is replaced, not echoed or logged.
        for hostile in ('a"b\\n{"level": "error"}', "x" * 65, "<script>"):
            r = await client.get("/pay?n=9", headers={"X-Request-Id": hostile})
            assert r.headers["X-Request-Id"] != hostile
            assert len(r.headers["X-Request-Id"]) == 16
        failed = await client.get("/fail")
        assert failed.status == 500
        generated = failed.headers["X-Request-Id"]
    logging.getLogger("inboxpay.sidecar").info("after the requests")

    paying = lines(records, "paying")
    assert len(paying) == 8
    assert all(getattr(r, "request_id", None) == f"req-{r.n}" for r in paying if r.n != "9")
    (error,) = lines(records, "unexpected error")
    assert getattr(error, "request_id", None) == generated
    answered = {getattr(r, "request_id", None) for r in lines(records, "request")}
    assert {*(f"req-{n}" for n in range(5)), generated} <= answered
    assert len(answered) == 5 + 3 + 1
    (after,) = lines(records, "after the requests")
    assert not hasattr(after, "request_id")


def test_lines_written_by_the_writer_thread_are_all_out_at_exit() -> None:
    # Lines go through a queue to one writer thread: none may be lost when the
    # process ends right after logging them, and each stays one JSON object.
    import subprocess
    import sys

    program = (
        "import logging, threading\n"
        "from inboxpay import logs\n"
        "logs.setup()\n"
        "def burst(t):\n"
        "    with logs.context(queue_id=f'Q{t}'):\n"
        "        for i in range(500):\n"
        "            logging.getLogger('inboxpay.milter').info('line', extra={'i': i})\n"
        "threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert len(entries) == 2000
    for t in range(4):
        mine = [e["i"] for e in entries if e["queue_id"] == f"Q{t}"]
        assert mine == list(range(500))
