"""The pay flow, exactly once per invoice.

The order matters: the payment row (and the store's one-active-payment-per-invoice
rule) is committed before the processor is called; the processor gets an idempotency
key derived from the invoice, the same for every attempt until one is declined; a
timeout leaves the row pending for the reconciler (settle.py), which settles it by
that key. So a crash, a retry, or a charge request that reaches the processor late can
neither charge twice nor lose a charge.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from inboxpay.card.header import Verifier
from inboxpay.config import LimitsConfig, Partner
from inboxpay.currency import to_minor
from inboxpay.processor.adapter import Processor
from inboxpay.processor.errors import (
    ProcessorError,
    ProcessorRejected,
    ProcessorTimeout,
    ProcessorUnavailable,
)
from inboxpay.processor.protocol import (
    BillingAddress,
    CardSecret,
    ChargeRequest,
    ChargeResult,
    ErrorCode,
    InvoiceRef,
    Merchant,
)
from inboxpay.sidecar.auth import Principal
from inboxpay.sidecar.errors import (
    Forbidden,
    Gone,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
    already_paid,
)
from inboxpay.sidecar.orgs import OrgDirectory
from inboxpay.sidecar.review import Reviewed, review
from inboxpay.sidecar.settle import CVC_KIND, Settler
from inboxpay.sidecar.wallet import Wallet, now
from inboxpay.store.api import Store
from inboxpay.store.model import (
    ACTIVE_STATUSES,
    AttemptLimit,
    Hold,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from inboxpay.vault import paymentcard

_log = logging.getLogger(__name__)

PAYMENT_KIND = "payment"
_WHITESPACE = re.compile(r"\s+")


def payment_json(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "status": p.status,
        "decline_reason": p.decline_reason or None,
        "challenge_url": p.challenge_url or None,
        "amount": p.details.get("amount"),
        "currency": p.currency,
        "merchant": p.details.get("merchant"),
        "partner": p.details.get("partner"),
        "invoice_number": p.details.get("invoice_number"),
        "payment_method": {
            "id": p.payment_method_id,
            "brand": p.details.get("brand"),
            "last4": p.details.get("last4"),
        },
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
    }


def request_hash(body: Mapping[str, Any]) -> str:
    # The security code is left out on purpose: a hash of three digits is the digits.
    canonical = {
        "card": _WHITESPACE.sub("", body["card"]),
        "payment_method_id": body["payment_method_id"],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def processor_key(secret: bytes, invoice_key: str, charged: int) -> str:
    """The idempotency key the processor sees: one per invoice payment, as the protocol asks.

    ``charged`` counts the invoice's earlier payments the processor answered with a charge
    (declined ones: a succeeded or open one holds the invoice). Only such an answer uses a
    key up; after a timeout, a not_received or an unreachable processor the next attempt
    sends the same key, so a request of the earlier attempt that lands late is the same
    charge, never a second one. Keyed with the installation's recipient key (every sidecar
    of it has it): another installation paying the same invoice gets other keys.
    """
    material = f"inboxpay-charge:{invoice_key}\x1e{charged}".encode()
    return "ipk_" + hmac.new(secret, material, hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class PayContext:
    store: Store
    wallet: Wallet
    verifier: Verifier
    recipient_key: bytes
    orgs: OrgDirectory
    partners: Mapping[str, Partner]
    processors: Mapping[str, Processor]
    limits: LimitsConfig
    reconcile_after: int
    # Counts each payment outcome (succeeded, declined, ...) for /metrics.
    count_outcome: Callable[[str], None] = lambda status: None


class PaymentService:
    def __init__(self, ctx: PayContext) -> None:
        self._c = ctx
        self._settler = Settler(ctx.store, ctx.processors, ctx.reconcile_after, ctx.count_outcome)

    async def pay(
        self, user: Principal, body: dict[str, Any], idempotency_key: str
    ) -> tuple[int, dict[str, Any]]:
        store = self._c.store
        replay = await store.begin_idempotent(user.sub, idempotency_key, request_hash(body))
        if replay is not None:
            return replay.status, replay.body
        try:
            status, result = await self._pay(user, body)
        except BaseException:
            # Nothing was charged (errors come before the processor, or are settled by
            # the reconciler): let the client retry with the same key.
            await asyncio.shield(store.release_idempotent(user.sub, idempotency_key))
            raise
        await store.finish_idempotent(user.sub, idempotency_key, status, result)
        return status, result

    async def _pay(self, user: Principal, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        c = self._c
        reviewed = await review(body["card"], user, c.verifier, c.recipient_key, c.store, c.orgs)
        if reviewed.status == "org_disabled":
            raise Forbidden("payments are switched off for your organization", "org_disabled")
        if reviewed.status in ("paid", "processing"):
            raise already_paid()
        if reviewed.status == "expired":
            raise Gone("this payment card has expired", "card_expired")
        method = await self._usable_method(user, body)
        inv = reviewed.invoice
        partner = c.partners.get(inv["partner"])
        if partner is None:
            raise Unprocessable("the card's partner is not configured here", "unknown_partner")
        processor = c.processors.get(partner.processor)
        if processor is None:
            raise ServiceUnavailable("no processor for this partner", "processor_unavailable")
        # The count in _usable_method turns most over-limit requests away early; this is
        # the authoritative one: counted and recorded at once, so a burst cannot overshoot.
        hour_ago = now() - datetime.timedelta(hours=1)
        limit = c.limits.payment_attempts_per_hour
        if not await c.store.take_attempt(user.sub, PAYMENT_KIND, "*", hour_ago, limit):
            raise TooManyRequests("too many payment attempts; try again later", "rate_limited")
        payment = await self._create(user, reviewed, method, partner)
        result = await self._charge(payment, processor, method, body["security_code"], inv)
        payment = await self._apply(payment, result, user, method) if result else payment
        return 201, payment_json(payment)

    def _cvc_hold(self, method: PaymentMethod) -> Hold:
        # Every attempt counts as a wrong code until the processor says otherwise
        # (Settler.release), so concurrent wrong codes cannot all get past the lock.
        limits = self._c.limits
        window = now() - datetime.timedelta(minutes=limits.cvc_lock_minutes)
        return Hold(CVC_KIND, method.id, window, limits.cvc_failures_before_lock)

    async def _usable_method(self, user: Principal, body: dict[str, Any]) -> PaymentMethod:
        c = self._c
        hour_ago = now() - datetime.timedelta(hours=1)
        tries = await c.store.count_attempts(user.sub, PAYMENT_KIND, "*", hour_ago)
        if tries >= c.limits.payment_attempts_per_hour:
            raise TooManyRequests("too many payment attempts; try again later", "rate_limited")
        method = await c.store.get_payment_method(user.sub, body["payment_method_id"])
        # The early answer; the hold taken with the payment row is the authoritative one.
        hold = self._cvc_hold(method)
        if await c.store.count_attempts(user.sub, CVC_KIND, method.id, hold.since) >= hold.limit:
            raise _locked()
        # CardDataError: a 400 with its code (middleware.translate)
        paymentcard.validate_security_code(body["security_code"], method.brand)
        paymentcard.validate_expiry(method.exp_month, method.exp_year)
        return method

    async def _create(
        self, user: Principal, reviewed: Reviewed, method: PaymentMethod, partner: Partner
    ) -> Payment:
        claims, inv, key = reviewed.claims, reviewed.invoice, reviewed.invoice_key
        charged = await self._c.store.charged_attempts(key)
        stamp = now()
        payment = Payment(
            id="pay_" + secrets.token_hex(12),
            owner=user.sub,
            invoice_key=key,
            card_id=str(claims.get("jti", "")),
            payment_method_id=method.id,
            amount_minor=to_minor(Decimal(inv["amount"]), inv["currency"]),
            currency=inv["currency"],
            status=PaymentStatus.PENDING,
            decline_reason="",
            challenge_url="",
            processor=partner.processor,
            processor_key=processor_key(self._c.recipient_key, key, charged),
            processor_ref="",
            details={
                "amount": inv["amount"],
                "merchant": inv["merchant"],
                "partner": partner.name,
                "invoice_number": inv["number"],
                "invoice_url": inv["url"],
                "brand": method.brand,
                "last4": method.last4,
                # Who may learn this payment's id when reviewing the invoice (review.py).
                "recipients": sorted(str(r) for r in claims["rcpt"]),
            },
            created_at=stamp,
            updated_at=stamp,
        )
        try:  # AlreadyPaid: a 409 already_paid (middleware.translate)
            created = await self._c.store.create_payment(payment, self._cvc_hold(method))
        except AttemptLimit:  # this hold is the security code's: the card is locked
            raise _locked() from None
        audit = {"invoice": inv["number"], "amount": inv["amount"], "currency": inv["currency"]}
        await self._c.store.audit(
            user.sub, "payment.create", created.id, audit | {"method": method.id}
        )
        return created

    async def _charge(
        self,
        payment: Payment,
        processor: Processor,
        method: PaymentMethod,
        security_code: str,
        inv: dict[str, Any],
    ) -> ChargeResult | None:
        secret = self._c.wallet.secret(method)
        card = CardSecret(
            number=secret["number"],
            exp_month=method.exp_month,
            exp_year=method.exp_year,
            cvc=security_code,
            name=secret["name"],
            billing_address=BillingAddress(**vars(method.billing_address)),
        )
        del secret, security_code  # plaintext lives only for this request (Python can't wipe it)
        request = ChargeRequest(
            idempotency_key=payment.processor_key,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            merchant=Merchant(inv["partner"], inv.get("account", ""), inv["merchant"]),
            invoice=InvoiceRef(inv["number"], inv["url"]),
            return_url=None,
        )
        store, failed = self._c.store, PaymentStatus.FAILED
        try:
            return await processor.charge(request, card)
        except ProcessorTimeout:
            self._c.count_outcome(PaymentStatus.PENDING)
            _log.warning("processor timed out; payment left pending", extra={"payment": payment.id})
            return None
        except ProcessorUnavailable:
            await store.update_payment(payment.id, failed, "processor_unavailable")
            await self._settler.release(payment)
            raise ServiceUnavailable(
                "the payment processor cannot be reached; nothing was charged",
                "processor_unavailable",
            ) from None
        except ProcessorError as e:
            await store.update_payment(payment.id, failed, "processor_error")
            await self._settler.release(payment)
            mismatch = isinstance(e, ProcessorRejected) and e.code == ErrorCode.IDEMPOTENCY_MISMATCH
            # The key already names a charge: an earlier attempt's request, taken for not
            # received, reached the processor after all. It is this invoice's payment.
            found = await self._settler.recover_key(payment.processor_key) if mismatch else None
            if found is not None and found.status in ACTIVE_STATUSES:
                raise already_paid() from None
            raise ServiceUnavailable(
                "the payment processor refused the request; nothing was charged", "processor_error"
            ) from None
        finally:
            del card

    async def _apply(
        self, payment: Payment, result: ChargeResult, user: Principal, method: PaymentMethod
    ) -> Payment:
        store = self._c.store
        updated = await store.update_payment(
            payment.id,
            result.status,
            decline_reason=result.decline_code or "",
            challenge_url=result.challenge_url or "",
            processor_ref=result.id,
        )
        self._c.count_outcome(result.status)
        await self._settler.release(payment, result)
        await store.audit(
            user.sub,
            f"payment.{result.status}",
            payment.id,
            {"reason": result.decline_code or "", "method": method.id},
        )
        return updated

    async def get(self, user: Principal, payment_id: str) -> dict[str, Any]:
        payment = await self._c.store.get_payment(user.sub, payment_id)
        return payment_json(await self.settle(payment))

    async def history(self, user: Principal) -> list[dict[str, Any]]:
        return [payment_json(p) for p in await self._c.store.list_payments(user.sub)]

    async def settle(self, payment: Payment) -> Payment:
        """Ask the processor about an open payment, by its key; update it if known."""
        return await self._settler.settle(payment)

    async def unreachable_processors(self) -> list[str]:
        down = []
        for name, processor in self._c.processors.items():
            try:
                await processor.ping()
            except ProcessorError:
                down.append(name)
        return down

    async def reconcile_once(self) -> int:
        """Settle payments open longer than ``reconcile_after``, and attach charges that
        reached the processor late to payments taken for not received; how many changed."""
        return await self._settler.reconcile_once()


def _locked() -> TooManyRequests:
    return TooManyRequests(
        "too many wrong security codes for this card; try later", "security_code_locked"
    )
