"""ProcessorClient against misbehaving in-process servers: every transport failure and odd
status lands in the right class, so the caller knows whether money may have moved."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from joserfc.jwk import ECKey

from inboxpay.processor import (
    ProcessorClient,
    ProcessorRejected,
    ProcessorTimeout,
    ProcessorUnavailable,
)
from tests.support.procs import free_port

from .helpers import card, request

PUBLIC = ECKey.generate_key("P-256", private=False)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def against(handler: Handler, steps: Callable[[ProcessorClient], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                client = ProcessorClient(
                    session, f"http://127.0.0.1:{port}", "k" * 20, PUBLIC, timeout=0.5
                )
                return await steps(client)
        finally:
            await runner.cleanup()

    return asyncio.run(go())


def answering(status: int, body: Any = None, text: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if text is not None:
            return web.Response(status=status, text=text)
        return web.json_response(body, status=status)

    return handler


def charge(client: ProcessorClient) -> Awaitable[Any]:
    return client.charge(request(), card())


def test_server_error_is_an_unknown_outcome() -> None:
    handler = answering(500, {"error": {"code": "internal_error", "message": "x"}})
    with pytest.raises(ProcessorTimeout) as e:
        against(handler, charge)
    assert e.value.reason == "server_error"


def test_unreadable_success_is_an_unknown_outcome() -> None:
    with pytest.raises(ProcessorTimeout) as e:
        against(answering(201, text="<html>ok</html>"), charge)
    assert e.value.reason == "bad_response"


def test_a_redirect_is_not_followed() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": "http://127.0.0.1:1/steal"})

    with pytest.raises(ProcessorTimeout) as e:
        against(handler, charge)
    assert e.value.reason == "bad_response"


def test_answer_for_another_charge_is_not_trusted() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return web.json_response(
            {
                "id": "ch_1",
                "idempotency_key": body["idempotency_key"],
                "status": "succeeded",
                "decline_code": None,
                "challenge_url": None,
                "amount_minor": body["amount_minor"] + 1,
                "currency": body["currency"],
                "created": "2030-01-01T00:00:00Z",
            },
            status=201,
        )

    with pytest.raises(ProcessorTimeout, match="another charge"):
        against(handler, charge)


def test_in_flight_is_an_unknown_outcome() -> None:
    handler = answering(409, {"error": {"code": "idempotency_in_flight", "message": "x"}})
    with pytest.raises(ProcessorTimeout) as e:
        against(handler, charge)
    assert e.value.reason == "in_flight"


def test_slow_answer_is_a_timeout() -> None:
    # The answer comes once the client has given up (not after a fixed time the server's
    # shutdown would wait for).
    gave_up = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await gave_up.wait()
        return web.json_response({})

    async def impatient(client: ProcessorClient) -> Any:
        try:
            return await charge(client)
        finally:
            gave_up.set()

    with pytest.raises(ProcessorTimeout) as e:
        against(handler, impatient)
    assert e.value.reason == "timeout"


def test_a_404_that_is_not_charge_not_found_is_not_none() -> None:
    # A wrong base URL must never read as "nothing was charged".
    with pytest.raises(ProcessorRejected) as e:
        against(answering(404, text="Not Found"), lambda c: c.find("pay_1"))
    assert e.value.status == 404 and e.value.code is None


def test_ping_reports_unhealthy() -> None:
    with pytest.raises(ProcessorUnavailable, match="503"):
        against(answering(503, text="down"), lambda c: c.ping())


def test_connection_refused_means_nothing_was_sent() -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{free_port()}"
            await ProcessorClient(session, url, "k" * 20, PUBLIC, timeout=2).charge(
                request(), card()
            )

    with pytest.raises(ProcessorUnavailable):
        asyncio.run(go())


def test_dropped_connection_is_an_unknown_outcome() -> None:
    async def go() -> None:
        async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # the request has started to arrive: then hang up
            writer.close()

        server = await asyncio.start_server(drop, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}"
                await ProcessorClient(session, url, "k" * 20, PUBLIC, timeout=2).charge(
                    request(), card()
                )
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(ProcessorTimeout) as e:
        asyncio.run(go())
    assert e.value.reason == "connection_lost"
