"""Settling payments with the processor after the pay request: the reconciler's side.

An open payment is looked up by its processor key. A payment the processor never heard
of within ``reconcile_after`` becomes failed/not_received and frees its invoice; its key
stays the invoice's key (paying.processor_key), and for a day the reconciler keeps
asking about it, so a charge request that reached the processor late is attached to the
payment that made it instead of being lost.

Security-code holds (paying._cvc_hold) are released here, once the processor's answer
shows the attempt was not a wrong code.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping

from inboxpay.processor.adapter import Processor
from inboxpay.processor.errors import ProcessorError
from inboxpay.processor.protocol import ChargeResult, ChargeStatus
from inboxpay.sidecar.wallet import now
from inboxpay.store.api import Store
from inboxpay.store.model import (
    NOT_RECEIVED,
    OPEN_STATUSES,
    AlreadyPaid,
    Payment,
    PaymentFinal,
    PaymentStatus,
)

_log = logging.getLogger(__name__)

CVC_KIND = "cvc_failure"
WRONG_CODE = "incorrect_cvc"
#: How long a payment taken for not received is still asked about: processors forget
#: idempotency keys after about a day, and no request arrives later than that.
LATE_CHARGE_WINDOW = datetime.timedelta(days=1)


class Settler:
    def __init__(
        self,
        store: Store,
        processors: Mapping[str, Processor],
        reconcile_after: int,
        count_outcome: Callable[[str], None],
        clock: Callable[[], datetime.datetime] = now,
    ) -> None:
        """``clock``: the current time, aware UTC (tests move it instead of waiting)."""
        self._store = store
        self._processors = processors
        self._reconcile_after = reconcile_after
        self._count = count_outcome
        self._clock = clock

    async def release(self, payment: Payment, result: ChargeResult | None = None) -> None:
        """End the security-code hold of a payment that was pending: kept as the failure
        it is for a wrong code, all of the card's failures cleared by a success, else
        released (nothing, or something other than the code, decided the attempt)."""
        store, owner, method = self._store, payment.owner, payment.payment_method_id
        if result is not None and result.status == ChargeStatus.SUCCEEDED:
            await store.clear_attempts(owner, CVC_KIND, method)
        elif result is None or result.decline_code != WRONG_CODE:
            await store.release_attempt(owner, CVC_KIND, method)

    async def _find(self, payment: Payment) -> tuple[bool, ChargeResult | None]:
        """(asked, the charge made with the payment's key); asked is False when the
        processor could not say."""
        processor = self._processors.get(payment.processor)
        if processor is None:
            return False, None
        try:
            return True, await processor.find(payment.processor_key)
        except ProcessorError as e:
            _log.info(
                "could not ask the processor now: %s",
                e.__class__.__name__,
                extra={"payment": payment.id},
            )
            return False, None

    async def settle(self, payment: Payment) -> Payment:
        """Ask the processor about an open payment, by its key; update it if known."""
        if payment.status not in OPEN_STATUSES:
            return payment
        asked, result = await self._find(payment)
        if not asked:
            return payment
        store = self._store
        if result is None:
            age = self._clock() - payment.created_at
            if age <= datetime.timedelta(seconds=self._reconcile_after):
                return payment
            # Looked up by the invoice's key just now: nothing was charged yet. The invoice
            # is freed; a late arrival is found by recover() or deduplicated by the key.
            updated = await self._update(payment, PaymentStatus.FAILED, NOT_RECEIVED)
            if updated is None:  # settled meanwhile by another request or sidecar
                return await store.get_payment_any_owner(payment.id)
            if payment.status == PaymentStatus.PENDING:
                await self.release(payment)
            return updated
        if PaymentStatus(result.status) == payment.status:
            return payment
        updated = await self._update(
            payment, result.status, result.decline_code or "", result.challenge_url or "", result.id
        )
        if updated is None:  # settled meanwhile by another request or sidecar
            return await store.get_payment_any_owner(payment.id)
        if payment.status == PaymentStatus.PENDING:
            await self.release(payment, result)
        self._count(result.status)
        await store.audit("reconciler", f"payment.{result.status}", payment.id, {})
        return updated

    async def _update(
        self,
        payment: Payment,
        status: str,
        reason: str = "",
        challenge_url: str = "",
        ref: str = "",
    ) -> Payment | None:
        try:
            return await self._store.update_payment(payment.id, status, reason, challenge_url, ref)
        except PaymentFinal:
            return None

    async def recover(self, payment: Payment) -> Payment | None:
        """A payment failed as not_received whose charge the processor shows after all:
        the charge is attached to it. None when there is none (or it is elsewhere)."""
        _, result = await self._find(payment)
        if result is None:
            return None
        try:
            revived = await self._store.revive_payment(
                payment.id,
                result.status,
                result.decline_code or "",
                result.challenge_url or "",
                result.id,
            )
        except AlreadyPaid:
            # Another payment of the invoice is open or paid: it has the same key, so it
            # settles to this very charge.
            return None
        if revived is not None:
            _log.warning(
                "a charge reached the processor late; attached to its payment",
                extra={"payment": payment.id, "status": str(result.status)},
            )
            self._count(result.status)
            await self._store.audit("reconciler", f"payment.late_{result.status}", payment.id, {})
        return revived

    async def recover_key(self, processor_key: str) -> Payment | None:
        """Attach the charge made with ``processor_key`` to the payment that made it."""
        since = self._clock() - LATE_CHARGE_WINDOW
        for payment in await self._store.not_received_payments(since):
            if payment.processor_key == processor_key:
                revived = await self.recover(payment)
                if revived is not None:
                    return revived
        return None

    async def reconcile_once(self) -> int:
        cutoff = self._clock() - datetime.timedelta(seconds=self._reconcile_after)
        changed = 0
        for payment in await self._store.stale_payments(OPEN_STATUSES, cutoff):
            if (await self.settle(payment)).status != payment.status:
                changed += 1
        for payment in await self._store.not_received_payments(self._clock() - LATE_CHARGE_WINDOW):
            if await self.recover(payment) is not None:
                changed += 1
        return changed
