"""What the sidecar needs from a processor; each partner's config picks an adapter.

:class:`inboxpay.processor.client.ProcessorClient` speaks the v1 wire protocol (the
sandbox and any processor that implements it); an adapter for a processor with its own
API implements this Protocol and raises the same errors with the same meaning
(docs/processor-protocol.md, "An adapter for a real processor").
"""

from __future__ import annotations

from typing import Protocol

from inboxpay.processor.protocol import CardSecret, ChargeRequest, ChargeResult


class Processor(Protocol):
    """A payment processor. Errors are the :mod:`inboxpay.processor.errors` tree.

    The money contract: ``charge`` with a given idempotency key charges at most once, no
    matter how often it is called; after a ProcessorTimeout the charge may exist, and
    ``find`` with the same key is how to learn whether it does. A caller whose task is
    cancelled during ``charge`` is in the same position as after a ProcessorTimeout.
    """

    async def charge(self, req: ChargeRequest, card: CardSecret) -> ChargeResult:
        """Charge the card; raises ProcessorUnavailable, ProcessorRejected (nothing charged)
        or ProcessorTimeout (outcome unknown: leave the payment pending)."""
        ...

    async def get(self, charge_id: str) -> ChargeResult:
        """The charge as it is now; ProcessorRejected (404) when the processor has no such id."""
        ...

    async def find(self, idempotency_key: str) -> ChargeResult | None:
        """The charge made with this key, or None when the processor is sure there is none."""
        ...

    async def ping(self) -> None:
        """Raise a ProcessorError when the processor cannot be reached or is unhealthy."""
        ...

    async def close(self) -> None:
        """Release connections; the adapter is not used afterwards."""
        ...
