from __future__ import annotations

import re

from aiohttp import web

from inboxpay.sidecar.errors import BadRequest
from inboxpay.sidecar.http import json_response, read_json
from inboxpay.sidecar.schema import ORG_SETTING
from inboxpay.sidecar.state import admin, services

routes = web.RouteTableDef()

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}")


def _domain(request: web.Request) -> str:
    domain = request.match_info["domain"].lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise BadRequest("not a domain name", "invalid_domain")
    return domain


@routes.get("/v1/admin/orgs/{domain}")
async def get_org(request: web.Request) -> web.Response:
    admin(request)
    domain = _domain(request)
    s = services(request)
    stored = await s.store.get_org(domain)
    return json_response(
        {
            "domain": domain,
            "pay_enabled": await s.orgs.pay_enabled(domain),
            "source": "store" if stored else ("config" if domain in s.config.orgs else "default"),
            "updated_at": stored.updated_at.isoformat() if stored else None,
        }
    )


@routes.put("/v1/admin/orgs/{domain}")
async def put_org(request: web.Request) -> web.Response:
    principal = admin(request)
    domain = _domain(request)
    body = await read_json(request, ORG_SETTING)
    s = services(request)
    setting = await s.store.set_org(domain, body["pay_enabled"], principal.sub)
    s.orgs.invalidate()
    await s.store.audit(principal.sub, "org.set", domain, {"pay_enabled": body["pay_enabled"]})
    return json_response(
        {
            "domain": domain,
            "pay_enabled": setting.pay_enabled,
            "source": "store",
            "updated_at": setting.updated_at.isoformat(),
        }
    )
