"""The processor component's exception tree.

Callers decide from the class alone what happened to the money:

- :class:`ProcessorUnavailable`: nothing reached the processor, nothing was charged;
- :class:`ProcessorRejected`: the processor refused the request, nothing was charged;
- :class:`ProcessorTimeout`: the request may have reached the processor and no usable
  answer came back, so the charge may or may not exist. Leave the payment pending and
  let the reconciler look it up by its idempotency key; never charge again under a new key.

No message in this tree ever carries card data: errors name fields, never their values.
"""

from __future__ import annotations

from inboxpay.errors import InboxPayError


class ProcessorError(InboxPayError):
    """Base class of every error of the processor adapters and the sandbox processor."""


class ProcessorUnavailable(ProcessorError):
    """No connection could be made (refused, no route, connect timeout): nothing was sent."""


class ProcessorTimeout(ProcessorError):
    """The outcome is unknown: the caller must leave the payment pending and reconcile.

    Raised for a timeout after the request may have been sent, and for every other
    failure with the same consequence: the connection dropped mid-request, the processor
    answered 5xx or ``idempotency_in_flight``, or its answer was not a valid protocol
    message. ``reason`` says which: ``timeout``, ``connection_lost``, ``server_error``,
    ``in_flight`` or ``bad_response``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProcessorRejected(ProcessorError):
    """The processor answered 4xx: the request was refused and nothing was charged.

    ``code`` is the protocol's error code (``idempotency_mismatch``, ``unauthorized``,
    ``invalid_request``, ...) or None when the answer carried none.
    """

    def __init__(self, status: int, code: str | None) -> None:
        super().__init__(f"processor rejected the request: HTTP {status} {code or '(no code)'}")
        self.status = status
        self.code = code


class MalformedMessage(ProcessorError):
    """A protocol message (request, response or sealed card) that breaks the protocol.

    The message names the field and the rule, never the value: values may be card data.
    """


class SealError(ProcessorError):
    """A payment method that could not be sealed to, or opened with, the processor key."""


class SandboxError(ProcessorError):
    """Base class of the sandbox processor's own errors (server side)."""


class LedgerError(SandboxError):
    """The sandbox processor's ledger could not be read or written."""


class IdempotencyKeyReused(SandboxError):
    """The sandbox saw this idempotency key before, with a different request."""
