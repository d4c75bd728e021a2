from __future__ import annotations

from aiohttp import web

from inboxpay.sidecar.http import json_response, path_id, read_json
from inboxpay.sidecar.schema import BILLING_PROFILE, PAYMENT_METHOD_CREATE, PAYMENT_METHOD_UPDATE
from inboxpay.sidecar.state import services, user

routes = web.RouteTableDef()


@routes.get("/v1/payment-methods")
async def list_methods(request: web.Request) -> web.Response:
    principal = user(request)
    return json_response({"data": await services(request).wallet.methods(principal)})


@routes.post("/v1/payment-methods")
async def add_method(request: web.Request) -> web.Response:
    principal = user(request)
    body = await read_json(request, PAYMENT_METHOD_CREATE)
    return json_response(await services(request).wallet.add(principal, body), status=201)


@routes.get("/v1/payment-methods/{id}")
async def get_method(request: web.Request) -> web.Response:
    principal = user(request)
    return json_response(await services(request).wallet.get(principal, path_id(request)))


@routes.patch("/v1/payment-methods/{id}")
async def update_method(request: web.Request) -> web.Response:
    principal = user(request)
    method_id = path_id(request)
    body = await read_json(request, PAYMENT_METHOD_UPDATE)
    wallet = services(request).wallet
    return json_response(await wallet.update(principal, method_id, body))


@routes.delete("/v1/payment-methods/{id}")
async def delete_method(request: web.Request) -> web.Response:
    principal = user(request)
    await services(request).wallet.delete(principal, path_id(request))
    return web.Response(status=204)


@routes.get("/v1/billing-profile")
async def get_profile(request: web.Request) -> web.Response:
    principal = user(request)
    return json_response(await services(request).wallet.profile(principal))


@routes.put("/v1/billing-profile")
async def put_profile(request: web.Request) -> web.Response:
    principal = user(request)
    body = await read_json(request, BILLING_PROFILE)
    return json_response(await services(request).wallet.put_profile(principal, body))
