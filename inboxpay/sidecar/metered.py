"""A processor adapter whose calls are timed into the sidecar's metrics.

Wrapped once, where the sidecar opens its processors, so every call (pay, settle,
readiness) is counted whatever adapter sits underneath.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from inboxpay.processor.adapter import Processor
from inboxpay.processor.errors import (
    ProcessorError,
    ProcessorRejected,
    ProcessorTimeout,
    ProcessorUnavailable,
)
from inboxpay.processor.protocol import CardSecret, ChargeRequest, ChargeResult
from inboxpay.sidecar.metrics import Metrics

T = TypeVar("T")


def outcome_of(error: BaseException) -> str:
    """A bounded label for how a call failed; ProcessorTimeout says why (its ``reason``)."""
    if isinstance(error, ProcessorTimeout):
        return error.reason  # timeout, connection_lost, server_error, in_flight, bad_response
    if isinstance(error, ProcessorRejected):
        return "rejected"
    if isinstance(error, ProcessorUnavailable):
        return "unavailable"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, ProcessorError):
        return "error"
    return "unexpected"


class MeteredProcessor:
    """Implements :class:`Processor` around ``inner``, observing each call's duration."""

    def __init__(self, inner: Processor, name: str, metrics: Metrics) -> None:
        self._inner = inner
        self._name = name
        self._seconds = metrics.processor

    async def charge(self, req: ChargeRequest, card: CardSecret) -> ChargeResult:
        return await self._timed("charge", self._inner.charge(req, card))

    async def get(self, charge_id: str) -> ChargeResult:
        return await self._timed("get", self._inner.get(charge_id))

    async def find(self, idempotency_key: str) -> ChargeResult | None:
        return await self._timed("find", self._inner.find(idempotency_key))

    async def ping(self) -> None:
        await self._timed("ping", self._inner.ping())

    async def close(self) -> None:
        await self._inner.close()

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.monotonic()
        outcome = "ok"
        try:
            return await call
        except BaseException as e:
            outcome = outcome_of(e)
            raise
        finally:
            elapsed = time.monotonic() - started
            self._seconds.labels(self._name, operation, outcome).observe(elapsed)
