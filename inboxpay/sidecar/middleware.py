"""Every request: an id, CORS for webmail origins, metrics, and errors rendered as JSON.

This is the one place where lower layers' errors become HTTP answers (:func:`translate`);
a traceback never reaches a client.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from inboxpay import logs
from inboxpay.card.header import CardError
from inboxpay.sidecar.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    already_paid,
)
from inboxpay.sidecar.http import error_body, json_response
from inboxpay.sidecar.metrics import METRICS
from inboxpay.store import model as store_errors
from inboxpay.vault.paymentcard import CardDataError

_log = logging.getLogger("inboxpay.sidecar")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed on this endpoint"),
    413: ("body_too_large", "request body is too large"),
}


def translate(e: Exception) -> ApiError | None:
    """Lower layers' errors as API errors; None for anything unexpected (a logged 500).

    The one table for the sidecar: the store's errors, the card's (verifying the card a
    request carries) and the card data a user typed. Handlers translate only where the
    answer depends on more than the error: a field to name (the wallet's form), a
    payment row to settle first (the processor's errors, in paying.py), or which limit
    was reached (AttemptLimit). A VaultError, or any error not named here, is a 500.
    """
    if isinstance(e, store_errors.RowNotFound):
        return NotFound("no such object", "not_found")
    if isinstance(e, store_errors.IdempotencyInFlight):
        return Conflict(
            "a request with this Idempotency-Key is in progress", "idempotency_in_progress"
        )
    if isinstance(e, store_errors.IdempotencyMismatch):
        return Unprocessable(
            "this Idempotency-Key was used with another request", "idempotency_mismatch"
        )
    if isinstance(e, store_errors.AlreadyPaid):
        return already_paid()
    if isinstance(e, store_errors.DuplicatePaymentMethod):
        return Conflict("this card is already saved", "duplicate_payment_method")
    if isinstance(e, store_errors.WriteConflict):
        return Conflict("the request conflicts with the current state", "conflict")
    if isinstance(e, store_errors.StoreError):
        return ServiceUnavailable("the store is unavailable; try again", "store_unavailable")
    if isinstance(e, CardError):  # a card that does not parse, or does not verify
        if e.code == "malformed_card":
            return BadRequest(str(e), e.code)
        return Unprocessable(str(e), e.code)
    if isinstance(e, CardDataError):  # the wallet names the field itself (wallet.py)
        return BadRequest(str(e), e.code)
    return None


# A caller's id is echoed and logged: only a short token of safe characters is kept.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id(offered: str) -> str:
    return offered if _REQUEST_ID.match(offered) else secrets.token_hex(8)


def error_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = _request_id(request.headers.get("X-Request-Id", ""))
        started = time.monotonic()
        # Every line logged while handling this request, by any module, carries its id.
        with logs.context(request_id=request_id):
            response = await _answer(request, handler)
            response.headers["X-Request-Id"] = request_id
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            elapsed = time.monotonic() - started
            request.app[METRICS].requests.labels(
                name, request.method, str(response.status)
            ).observe(elapsed)
            _log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": name,
                    "status": response.status,
                    "ms": round(elapsed * 1000, 1),
                },
            )
        return response

    return middleware


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or its error as a JSON answer."""
    try:
        return await handler(request)
    except ApiError as e:
        return json_response(error_body(e.code, e.message, e.field), status=e.status)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code, message = _HTTP_CODES.get(e.status, ("http_error", e.reason))
        response = json_response(error_body(code, message), status=e.status)
        if "Allow" in e.headers:  # RFC 9110: a 405 lists the methods that work
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a traceback out
        api = translate(e)
        if api is None:
            _log.exception("unexpected error")
            api = ApiError("internal error", "internal_error")
            api.status = 500
        return json_response(error_body(api.code, api.message), status=api.status)


def cors_middleware(origins: tuple[str, ...]) -> Middleware:
    allowed = frozenset(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if (
            request.method == "OPTIONS"
            and origin
            and "Access-Control-Request-Method" in request.headers
        ):
            if origin not in allowed:
                return json_response(error_body("cors_denied", "origin not allowed"), status=403)
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
            )
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if origin and origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
        return response

    return middleware
