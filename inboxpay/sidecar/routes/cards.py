from __future__ import annotations

from aiohttp import web

from inboxpay.sidecar.http import json_response, read_json
from inboxpay.sidecar.review import review, review_json
from inboxpay.sidecar.schema import VERIFY_CARD
from inboxpay.sidecar.state import services, user

routes = web.RouteTableDef()


@routes.post("/v1/cards/verify")
async def verify(request: web.Request) -> web.Response:
    principal = user(request)
    body = await read_json(request, VERIFY_CARD)
    s = services(request)
    reviewed = await review(body["card"], principal, s.cards, s.recipient_key, s.store, s.orgs)
    return json_response(review_json(reviewed))
