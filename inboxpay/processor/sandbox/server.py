"""The sandbox processor: a separate process that speaks protocol v1 with test cards.

It holds its own P-256 private key (the sidecar only ever has the public half), opens
each payment method in memory, decides with :mod:`.cards`, and writes the charge
to its own ledger before answering. ``delay`` holds every charge answer back *after*
the charge is written, which is the hard case for a client: the money moved and the
answer is late, so the client times out and must find the charge by its key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from joserfc.jwk import ECKey

from inboxpay.processor.errors import IdempotencyKeyReused, LedgerError, MalformedMessage, SealError
from inboxpay.processor.keys import generate_processor_key, load_processor_key, public_jwk_of
from inboxpay.processor.protocol import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    ErrorCode,
    error_json,
    is_http_url,
    origin_of,
)
from inboxpay.processor.sandbox.cards import decide
from inboxpay.processor.sandbox.ledger import Ledger, StoredCharge, new_charge_id, now
from inboxpay.processor.sandbox.page import challenge_page, message_page, security_headers
from inboxpay.processor.sandbox.settings import (
    SandboxSettings,
    parse_listen,
    settings_from_config,
    validate,
)
from inboxpay.processor.seal import key_id, open_card

__all__ = [
    "SandboxSettings",
    "create_app",
    "generate_processor_key",
    "main_sandbox",
    "public_jwk_of",
    "run",
    "settings_from_config",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


SETTINGS = web.AppKey("settings", SandboxSettings)
PRIVATE_KEY = web.AppKey("private_key", ECKey)
LEDGER = web.AppKey("ledger", Ledger)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: ErrorCode, message: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(error_json(code, message), status=status, headers=headers)


def _authorized(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = request.app[SETTINGS].api_key
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


@web.middleware
async def _api(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer check for /v1/, and the one place errors become protocol answers."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    if not _authorized(request):
        return _error(401, ErrorCode.UNAUTHORIZED, "missing or wrong bearer token")
    try:
        return await handler(request)
    except MalformedMessage as e:
        return _error(400, ErrorCode.INVALID_REQUEST, str(e))
    except SealError as e:
        # The detail goes to our log only: the sender learns nothing about the key.
        log.info("unusable payment method", extra={"reason": str(e)})
        return _error(400, ErrorCode.INVALID_PAYMENT_METHOD, "payment_method cannot be used")
    except IdempotencyKeyReused as e:
        return _error(409, ErrorCode.IDEMPOTENCY_MISMATCH, str(e))
    except LedgerError:
        log.exception("ledger failure")
        return _error(500, ErrorCode.INTERNAL_ERROR, "the ledger failed")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = ErrorCode.NOT_FOUND if e.status == 404 else ErrorCode.INVALID_REQUEST
        return _error(e.status, code, e.reason)


def _request_hash(req: ChargeRequest, card_fingerprint: str) -> str:
    """What "the same request" means for idempotency: every field, and the card that the
    (randomized) JWE decrypts to."""
    canonical = json.dumps(
        {"request": req.fields_json(), "card": card_fingerprint},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _result(request: web.Request, charge: StoredCharge) -> ChargeResult:
    base = request.app[SETTINGS].public_base_url.rstrip("/")
    waiting = charge.status is ChargeStatus.REQUIRES_ACTION
    return ChargeResult(
        id=charge.id,
        idempotency_key=charge.idempotency_key,
        status=charge.status,
        decline_code=charge.decline_code,
        challenge_url=f"{base}/challenge/{charge.id}" if waiting else None,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        created=charge.created,
    )


async def _json_body(request: web.Request) -> object:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("body: expected JSON") from None


async def create_charge(request: web.Request) -> web.Response:
    ledger = request.app[LEDGER]
    req, payment_method = ChargeRequest.from_json(await _json_body(request))
    card = open_card(payment_method, request.app[PRIVATE_KEY])
    outcome = decide(card, now().date())
    fingerprint, last4 = ledger.card_fingerprint(card), card.last4
    # Nothing below needs the card: drop it before the ledger write and the answer.
    del card
    stamp = now()
    charge, created = ledger.create(
        StoredCharge(
            id=new_charge_id(),
            idempotency_key=req.idempotency_key,
            request_hash=_request_hash(req, fingerprint),
            status=outcome.status,
            decline_code=outcome.decline_code,
            amount_minor=req.amount_minor,
            currency=req.currency,
            merchant_name=req.merchant.name,
            last4=last4,
            return_url=req.return_url,
            created=stamp,
            updated=stamp,
        )
    )
    log.info(
        "charge created" if created else "charge replayed",
        extra={
            "charge": charge.id,
            "status": charge.status.value,
            "decline_code": charge.decline_code,
            "amount_minor": charge.amount_minor,
            "currency": charge.currency,
            "last4": charge.last4,
        },
    )
    delay = request.app[SETTINGS].delay
    if delay > 0:
        await asyncio.sleep(delay)
    return web.json_response(_result(request, charge).to_json(), status=201 if created else 200)


def _not_found() -> web.Response:
    return _error(404, ErrorCode.CHARGE_NOT_FOUND, "no such charge")


async def get_charge(request: web.Request) -> web.Response:
    charge = request.app[LEDGER].get(request.match_info["id"])
    return _not_found() if charge is None else web.json_response(_result(request, charge).to_json())


async def find_charge(request: web.Request) -> web.Response:
    key = request.query.get("idempotency_key")
    if not key:
        raise MalformedMessage("idempotency_key: query parameter required")
    charge = request.app[LEDGER].find(key)
    return _not_found() if charge is None else web.json_response(_result(request, charge).to_json())


async def ledger_entries(request: web.Request) -> web.Response:
    charges = request.app[LEDGER].succeeded()
    return web.json_response({"charges": [_result(request, c).to_json() for c in charges]})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _html(text: str, status: int = 200, redirect_origin: str | None = None) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=security_headers(redirect_origin),
    )


async def challenge(request: web.Request) -> web.Response:
    charge = request.app[LEDGER].get(request.match_info["id"])
    if charge is None:
        return _html(message_page("Not found", "There is no such challenge."), 404)
    if charge.status is not ChargeStatus.REQUIRES_ACTION:
        return _html(message_page("Authentication complete", "You can close this window."))
    return _html(challenge_page(charge))


async def answer_challenge(request: web.Request) -> web.Response:
    form = await request.post()
    outcome = form.get("outcome")
    if outcome not in ("pass", "fail"):
        return _html(message_page("Bad request", "The answer must be pass or fail."), 400)
    ledger = request.app[LEDGER]
    charge = ledger.complete_challenge(request.match_info["id"], passed=outcome == "pass")
    if charge is None:
        if ledger.get(request.match_info["id"]) is None:
            return _html(message_page("Not found", "There is no such challenge."), 404)
        return _html(message_page("Already answered", "This challenge was already answered."), 409)
    log.info(
        "challenge answered",
        extra={"charge": charge.id, "status": charge.status.value, "outcome": outcome},
    )
    url = charge.return_url
    # Checked again here, not only when the charge was made: never redirect to javascript:.
    if url is not None and is_http_url(url):
        origin = origin_of(url)
        return web.Response(status=303, headers={"Location": url, **security_headers(origin)})
    return _html(message_page("Authentication complete", "You can close this window."))


def create_app(settings: SandboxSettings) -> web.Application:
    """The sandbox app; raises ConfigError for bad settings or an unreadable key."""
    validate(settings)
    app = web.Application(middlewares=[_api], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[PRIVATE_KEY] = load_processor_key(settings.private_key_file)

    async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
        app[LEDGER] = Ledger.open(settings.ledger_path)
        yield
        app[LEDGER].close()

    app.cleanup_ctx.append(ledger_ctx)
    app.router.add_post("/v1/charges", create_charge)
    app.router.add_get("/v1/charges", find_charge)
    app.router.add_get("/v1/charges/{id}", get_charge)
    app.router.add_get("/v1/ledger", ledger_entries)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/challenge/{id}", challenge)
    app.router.add_post("/challenge/{id}", answer_challenge)
    return app


def run(settings: SandboxSettings) -> None:
    """Serve until SIGINT or SIGTERM."""
    host, port = parse_listen(settings.listen)
    app = create_app(settings)
    log.info(
        "sandbox processor listening",
        extra={"listen": settings.listen, "kid": key_id(app[PRIVATE_KEY])},
    )
    web.run_app(
        app, host=host, port=port, print=None, access_log=logging.getLogger(f"{__name__}.access")
    )


def main_sandbox(settings: SandboxSettings) -> int:
    """``inboxpay processor-sandbox``: the CLI's entry point. Returns the exit code."""
    run(settings)
    return 0
