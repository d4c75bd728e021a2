from __future__ import annotations

import re

from aiohttp import web

from inboxpay.sidecar.errors import BadRequest
from inboxpay.sidecar.http import json_response, path_id, read_json
from inboxpay.sidecar.schema import PAYMENT_CREATE
from inboxpay.sidecar.state import services, user

routes = web.RouteTableDef()

_KEY = re.compile(r"[A-Za-z0-9_.:-]{8,128}")


@routes.post("/v1/payments")
async def create(request: web.Request) -> web.Response:
    principal = user(request)
    key = request.headers.get("Idempotency-Key", "")
    if not _KEY.fullmatch(key):
        raise BadRequest(
            "an Idempotency-Key header of 8-128 letters, digits or _.:- is required",
            "idempotency_key_required",
        )
    body = await read_json(request, PAYMENT_CREATE)
    status, result = await services(request).payments.pay(principal, body, key)
    return json_response(result, status=status)


@routes.get("/v1/payments")
async def list_payments(request: web.Request) -> web.Response:
    principal = user(request)
    return json_response({"data": await services(request).payments.history(principal)})


@routes.get("/v1/payments/{id}")
async def get_payment(request: web.Request) -> web.Response:
    principal = user(request)
    return json_response(await services(request).payments.get(principal, path_id(request)))
