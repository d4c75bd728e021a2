"""Request bodies: declared once, used to validate requests and to publish OpenAPI.

Validation is strict: unknown fields, wrong types and out-of-range values are
400s naming the field, so a client's mistake never reaches the vault or a processor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inboxpay.sidecar.errors import BadRequest


@dataclass(frozen=True)
class Field:
    kind: str  # "string" | "integer" | "boolean" | "object"
    required: bool = False
    max_length: int | None = None
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    range_code: str = "invalid_field"  # the error code for a value below minimum or above maximum
    properties: Mapping[str, Field] | None = None
    description: str = ""


Schema = Mapping[str, Field]


def _check(value: object, field: Field, where: str) -> object:
    if field.kind == "string":
        if not isinstance(value, str):
            raise BadRequest(f"{where} must be a string", "invalid_field", where)
        if field.max_length is not None and len(value) > field.max_length:
            raise BadRequest(f"{where} is longer than {field.max_length}", "invalid_field", where)
        if field.pattern is not None and not re.fullmatch(field.pattern, value):
            raise BadRequest(f"{where} has an invalid format", "invalid_field", where)
        return value
    if field.kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRequest(f"{where} must be an integer", "invalid_field", where)
        if (field.minimum is not None and value < field.minimum) or (
            field.maximum is not None and value > field.maximum
        ):
            raise BadRequest(
                f"{where} must be {field.minimum}..{field.maximum}", field.range_code, where
            )
        return value
    if field.kind == "boolean":
        if not isinstance(value, bool):
            raise BadRequest(f"{where} must be true or false", "invalid_field", where)
        return value
    assert field.properties is not None
    return validate(value, field.properties, where)


def validate(data: object, schema: Schema, where: str = "body") -> dict[str, Any]:
    """The validated object, or BadRequest naming the first offending field."""
    if not isinstance(data, dict):
        raise BadRequest(f"{where} must be a JSON object", "invalid_body")
    for name in data:
        if name not in schema:
            raise BadRequest(f"{where}: unknown field {str(name)[:40]!r}", "unknown_field")
    out: dict[str, Any] = {}
    for name, field in schema.items():
        path = name if where == "body" else f"{where}.{name}"
        if name not in data or data[name] is None:
            if field.required:
                raise BadRequest(f"{path} is required", "missing_field", path)
            continue
        out[name] = _check(data[name], field, path)
    return out


def openapi(schema: Schema) -> dict[str, Any]:
    """JSON Schema (OpenAPI 3.1) for a request body."""
    props: dict[str, Any] = {}
    for name, f in schema.items():
        p: dict[str, Any] = {"type": f.kind}
        if f.description:
            p["description"] = f.description
        if f.max_length is not None:
            p["maxLength"] = f.max_length
        if f.pattern is not None:
            p["pattern"] = f"^(?:{f.pattern})$"
        if f.minimum is not None:
            p["minimum"] = f.minimum
        if f.maximum is not None:
            p["maximum"] = f.maximum
        if f.properties is not None:
            p = openapi(f.properties) | ({"description": f.description} if f.description else {})
        if not f.required:
            p["type"] = [p["type"], "null"]  # an optional field may be null: same as absent
        props[name] = p
    required = [n for n, f in schema.items() if f.required]
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


#: One character of text: no C0 control, DEL or lone surrogate (no store can encode one).
_CHAR = r"[^\x00-\x1f\x7f\ud800-\udfff]"
_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f\ud800-\udfff]"


def _text(max_length: int, required: bool = False, description: str = "") -> Field:
    return Field("string", required, max_length, _CHAR + "*", description=description)


def _expiry(required: bool, minimum: int, maximum: int) -> Field:
    # The documented code for every expiry problem, the range included.
    return Field("integer", required, minimum=minimum, maximum=maximum, range_code="invalid_expiry")


ADDRESS: Schema = {
    "line1": _text(200),
    "line2": _text(200),
    "city": _text(100),
    "region": _text(100),
    "postal_code": _text(20),
    "country": Field("string", pattern=r"[A-Za-z]{2}", description="ISO 3166-1 alpha-2"),
}

VERIFY_CARD: Schema = {
    "card": Field("string", True, 8192, description="the InboxPay-Card header value"),
}

#: The expiry as the user typed it, "MM/YY" or "MM/YYYY": the server reads the year and
#: judges it (paymentcard.parse_expiry); instead of exp_month and exp_year.
EXPIRY = Field(
    "string", False, 16, _CHAR + "*", description="MM/YY or MM/YYYY, instead of exp_month/exp_year"
)

PAYMENT_METHOD_CREATE: Schema = {
    "number": Field("string", True, 32, r"[0-9 -]{12,32}", description="card number"),
    "expiry": EXPIRY,
    "exp_month": _expiry(False, 1, 12),
    "exp_year": _expiry(False, 2000, 2100),
    "name": _text(200, True, "cardholder name"),
    "billing_address": Field("object", properties=ADDRESS),
    "nickname": _text(60),
}

PAYMENT_METHOD_UPDATE: Schema = {
    "expiry": EXPIRY,
    "exp_month": _expiry(False, 1, 12),
    "exp_year": _expiry(False, 2000, 2100),
    "billing_address": Field("object", properties=ADDRESS),
    "nickname": _text(60),
}

BILLING_PROFILE: Schema = {
    "name": _text(200, True),
    "email": Field("string", True, 254, rf"{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}{{1,189}}"),
    "address": Field("object", properties=ADDRESS),
}

PAYMENT_CREATE: Schema = {
    "card": Field("string", True, 8192, description="the InboxPay-Card header value"),
    "payment_method_id": Field("string", True, 64, r"pm_[A-Za-z0-9]{1,60}"),
    "security_code": Field("string", True, 4, r"[0-9]{3,4}", description="never stored"),
}

ORG_SETTING: Schema = {"pay_enabled": Field("boolean", True)}
