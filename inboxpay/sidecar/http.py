"""Small request/response helpers shared by the route modules."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from inboxpay.sidecar.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from inboxpay.sidecar.schema import Schema, validate


async def read_json(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The request's JSON body, validated against ``schema``."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("request body is too large") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise BadRequest("request body is not valid JSON", "invalid_json") from None
    return validate(data, schema)


#: Every id the sidecar hands out (pm_..., pay_...). Anything else names no object, and must
#: not reach the store: PostgreSQL refuses a NUL in text, which would read as an outage.
_ID = re.compile(r"[A-Za-z0-9_]{1,64}")


def path_id(request: web.Request) -> str:
    """The ``{id}`` of the route; 404 when it cannot be one of ours."""
    value = request.match_info["id"]
    if not _ID.fullmatch(value):
        raise NotFound("no such object", "not_found")
    return value


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}
