"""Health, keys, the OpenAPI document and metrics: no user token needed."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inboxpay.sidecar.errors import ServiceUnavailable
from inboxpay.sidecar.http import json_response
from inboxpay.sidecar.metrics import METRICS
from inboxpay.sidecar.openapi import document
from inboxpay.sidecar.state import services
from inboxpay.store.model import StoreError

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    s = services(request)
    try:
        await s.store.ping()
    except StoreError:
        raise ServiceUnavailable("the store is not reachable", "store_unavailable") from None
    unreachable = await s.payments.unreachable_processors()
    if unreachable:
        raise ServiceUnavailable(
            f"processor not reachable: {', '.join(unreachable)}", "processor_unavailable"
        )
    return json_response({"status": "ready"})


@routes.get("/v1/keys")
async def keys(request: web.Request) -> web.Response:
    return json_response(services(request).cards.jwks())


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(document())


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
