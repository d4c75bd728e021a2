"""The OpenAPI 3.1 document served at /openapi.json; request bodies come from schema.py."""

from __future__ import annotations

from functools import cache
from typing import Any

from inboxpay import __version__
from inboxpay.sidecar import schema
from inboxpay.store.model import PaymentStatus

STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


ERROR = obj(
    # field: the request field at fault, when there is one (a form shows the error there).
    {"error": obj({"code": STR, "message": STR, "field": STR}, ["code", "message"])}
)
#: Derived from the store's one list (tests/unit/test_payment_statuses.py holds them).
PAYMENT_STATUS = {"enum": [s.value for s in PaymentStatus]}
ADDRESS = obj({k: STR for k in schema.ADDRESS})
PAYMENT_METHOD = obj(
    {
        "id": STR,
        "brand": STR,
        "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
        "exp_month": INT,
        "exp_year": INT,
        "expired": BOOL,
        "name": STR,
        "billing_address": ADDRESS,
        "nickname": STR,
        "created_at": STR,
    }
)
BILLING_PROFILE = obj({"name": STR, "email": STR, "address": ADDRESS, "updated_at": NSTR})
PAYMENT = obj(
    {
        "id": STR,
        "status": PAYMENT_STATUS,
        "decline_reason": NSTR,
        "challenge_url": NSTR,
        "amount": STR,
        "currency": STR,
        "merchant": STR,
        "partner": STR,
        "invoice_number": STR,
        "payment_method": obj({"id": STR, "brand": STR, "last4": STR}),
        "created_at": STR,
        "updated_at": STR,
    }
)
REVIEW = obj(
    {
        "card_id": NSTR,
        "status": {"enum": ["payable", "paid", "processing", "expired", "org_disabled"]},
        "merchant": STR,
        "partner": obj({"id": STR, "name": STR}),
        "broker": STR,
        "invoice_number": STR,
        "account": STR,
        "amount": STR,
        "currency": STR,
        "due_date": STR,
        "overdue": BOOL,
        "invoice_url": STR,
        "authentication": {"type": "object"},
        "from": NSTR,
        "expires_at": STR,
        "payment": {"oneOf": [{"type": "null"}, obj({"id": STR, "status": PAYMENT_STATUS})]},
    }
)
ORG = obj(
    {
        "domain": STR,
        "pay_enabled": BOOL,
        "source": {"enum": ["store", "config", "default"]},
        "updated_at": NSTR,
    }
)
JWKS = obj({"keys": {"type": "array", "items": {"type": "object"}}})


def _json(s: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": s}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", **_json(ERROR)} for c in codes}


def _op(
    summary: str,
    ok: int,
    response: dict[str, Any] | None,
    body: schema.Schema | None = None,
    errors: tuple[int, ...] = (400, 401, 404),
    auth: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "ok", **(_json(response) if response else {})},
            **_errors(*errors),
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, **_json(schema.openapi(body))}
    if not auth:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}]
DOMAIN = [
    {
        "name": "domain",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "maxLength": 253},
    }
]
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{8,128}$"},
}
BODY_ERRORS = (400, 401, 413, 415)


@cache
def document() -> dict[str, Any]:
    def listing(item: dict[str, Any]) -> dict[str, Any]:
        return obj({"data": {"type": "array", "items": item}})

    paths = {
        "/v1/cards/verify": {
            "post": _op(
                "Verify a payment card and review its invoice",
                200,
                REVIEW,
                schema.VERIFY_CARD,
                (*BODY_ERRORS, 403, 422),
            )
        },
        "/v1/payment-methods": {
            "get": _op("List saved payment methods", 200, listing(PAYMENT_METHOD), errors=(401,)),
            "post": _op(
                "Save a payment method",
                201,
                PAYMENT_METHOD,
                schema.PAYMENT_METHOD_CREATE,
                (*BODY_ERRORS, 409, 429),
            ),
        },
        "/v1/payment-methods/{id}": {
            "get": _op("A saved payment method", 200, PAYMENT_METHOD, params=ID),
            "patch": _op(
                "Update expiry, billing address or nickname",
                200,
                PAYMENT_METHOD,
                schema.PAYMENT_METHOD_UPDATE,
                (*BODY_ERRORS, 404),
                params=ID,
            ),
            "delete": _op("Delete a payment method", 204, None, params=ID),
        },
        "/v1/billing-profile": {
            "get": _op("The billing profile", 200, BILLING_PROFILE, errors=(401,)),
            "put": _op(
                "Replace the billing profile",
                200,
                BILLING_PROFILE,
                schema.BILLING_PROFILE,
                BODY_ERRORS,
            ),
        },
        "/v1/payments": {
            "get": _op("Payment history", 200, listing(PAYMENT), errors=(401,)),
            "post": _op(
                "Pay an invoice (exactly once)",
                201,
                PAYMENT,
                schema.PAYMENT_CREATE,
                (*BODY_ERRORS, 403, 404, 409, 410, 422, 429, 503),
                params=[IDEMPOTENCY],
            ),
        },
        "/v1/payments/{id}": {"get": _op("A payment (receipt)", 200, PAYMENT, params=ID)},
        "/v1/admin/orgs/{domain}": {
            "get": _op(
                "An organization's pay switch", 200, ORG, errors=(400, 401, 403), params=DOMAIN
            ),
            "put": _op(
                "Switch paying on or off for an organization",
                200,
                ORG,
                schema.ORG_SETTING,
                (*BODY_ERRORS, 403),
                params=DOMAIN,
            ),
        },
        "/v1/keys": {
            "get": _op("Card-signing public keys (JWKS)", 200, JWKS, errors=(), auth=False)
        },
        "/healthz": {"get": _op("Liveness", 200, obj({"status": STR}), errors=(), auth=False)},
        "/readyz": {
            "get": _op(
                "Readiness: store and processors",
                200,
                obj({"status": STR}),
                errors=(503,),
                auth=False,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "InboxPay sidecar", "version": __version__},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
