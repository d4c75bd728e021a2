"""The sidecar's API errors: each has an HTTP status, a stable code and a safe message.

Handlers raise these; one middleware renders them as
``{"error": {"code": ..., "message": ...}}``. Lower layers' errors are translated
into them in one place (:func:`inboxpay.sidecar.middleware.translate`).
"""

from __future__ import annotations

from inboxpay.errors import InboxPayError


class ApiError(InboxPayError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The request field at fault, for a form to show the error next to it.
        self.field = field
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Gone(ApiError):
    status, code = 410, "gone"


class PayloadTooLarge(ApiError):
    status, code = 413, "body_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "unprocessable"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


def already_paid() -> Conflict:
    """The answer for an invoice already paid or being paid, however the sidecar learnt it
    (the store's AlreadyPaid, the card's status, the processor's idempotency check)."""
    return Conflict("this invoice is already paid or being paid", "already_paid")
