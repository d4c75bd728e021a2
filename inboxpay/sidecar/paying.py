"""The pay flow, exactly once per invoice.

The order matters: the payment row (and the store's one-active-payment-per-invoice
rule) is committed before the processor is called; the processor gets an
idempotency key derived from that row; a timeout leaves the row pending for the
reconciler, which settles it by the same key. So a crash or a retry can neither
charge twice nor lose a charge.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from inboxpay import paymentcard
from inboxpay.card import Verifier
from inboxpay.config import LimitsConfig, Partner
from inboxpay.currency import to_minor
from inboxpay.orgs import OrgDirectory
from inboxpay.processor.adapter import Processor
from inboxpay.processor.errors import ProcessorError, ProcessorTimeout, ProcessorUnavailable
from inboxpay.processor.protocol import (
    BillingAddress,
    CardSecret,
    ChargeRequest,
    ChargeResult,
    InvoiceRef,
    Merchant,
)
from inboxpay.sidecar.auth import Principal
from inboxpay.sidecar.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
)
from inboxpay.sidecar.review import review
from inboxpay.sidecar.wallet import Wallet, now
from inboxpay.store.api import Store
from inboxpay.store.model import AlreadyPaid, Payment, PaymentFinal, PaymentMethod

_log = logging.getLogger(__name__)

PAYMENT_KIND = "payment"
CVC_KIND = "cvc_failure"
_WHITESPACE = re.compile(r"\s+")
_OPEN = ("pending", "requires_action")


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


def processor_key(payment_id: str) -> str:
    """The idempotency key the processor sees: derived from our payment row, stable on retry."""
    return "ipk_" + hashlib.sha256(b"inboxpay-charge:" + payment_id.encode()).hexdigest()[:40]


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
            raise Conflict("this invoice is already paid or being paid", "already_paid")
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
        payment = await self._create(user, reviewed.invoice_key, reviewed.claims, method, partner)
        result = await self._charge(payment, processor, method, body["security_code"], inv)
        payment = await self._apply(payment, result, user, method) if result else payment
        return 201, payment_json(payment)

    async def _usable_method(self, user: Principal, body: dict[str, Any]) -> PaymentMethod:
        c = self._c
        hour_ago = now() - datetime.timedelta(hours=1)
        tries = await c.store.count_attempts(user.sub, PAYMENT_KIND, "*", hour_ago)
        if tries >= c.limits.payment_attempts_per_hour:
            raise TooManyRequests("too many payment attempts; try again later", "rate_limited")
        method = await c.store.get_payment_method(user.sub, body["payment_method_id"])
        window = now() - datetime.timedelta(minutes=c.limits.cvc_lock_minutes)
        failures = await c.store.count_attempts(user.sub, CVC_KIND, method.id, window)
        if failures >= c.limits.cvc_failures_before_lock:
            raise TooManyRequests(
                "too many wrong security codes for this card; try later", "security_code_locked"
            )
        try:
            paymentcard.validate_security_code(body["security_code"], method.brand)
            paymentcard.validate_expiry(method.exp_month, method.exp_year)
        except paymentcard.CardDataError as e:
            raise BadRequest(str(e), e.code) from None
        return method

    async def _create(
        self,
        user: Principal,
        key: str,
        claims: dict[str, Any],
        method: PaymentMethod,
        partner: Partner,
    ) -> Payment:
        inv = claims["invoice"]
        payment_id = "pay_" + secrets.token_hex(12)
        stamp = now()
        payment = Payment(
            id=payment_id,
            owner=user.sub,
            invoice_key=key,
            card_id=str(claims.get("jti", "")),
            payment_method_id=method.id,
            amount_minor=to_minor(Decimal(inv["amount"]), inv["currency"]),
            currency=inv["currency"],
            status="pending",
            decline_reason="",
            challenge_url="",
            processor=partner.processor,
            processor_key=processor_key(payment_id),
            processor_ref="",
            details={
                "amount": inv["amount"],
                "merchant": inv["merchant"],
                "partner": partner.name,
                "invoice_number": inv["number"],
                "invoice_url": inv["url"],
                "brand": method.brand,
                "last4": method.last4,
            },
            created_at=stamp,
            updated_at=stamp,
        )
        try:
            created = await self._c.store.create_payment(payment)
        except AlreadyPaid:
            raise Conflict("this invoice is already paid or being paid", "already_paid") from None
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
        try:
            return await processor.charge(request, card)
        except ProcessorTimeout:
            self._c.count_outcome("pending")
            _log.warning("processor timed out; payment left pending", extra={"payment": payment.id})
            return None
        except ProcessorUnavailable:
            await self._c.store.update_payment(payment.id, "failed", "processor_unavailable")
            raise ServiceUnavailable(
                "the payment processor cannot be reached; nothing was charged",
                "processor_unavailable",
            ) from None
        except ProcessorError:
            await self._c.store.update_payment(payment.id, "failed", "processor_error")
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
        if result.status == "declined" and result.decline_code == "incorrect_cvc":
            await store.record_attempt(user.sub, CVC_KIND, method.id)
        elif result.status == "succeeded":
            await store.clear_attempts(user.sub, CVC_KIND, method.id)
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
        """Ask the processor about an open payment, by the same key; update it if known."""
        if payment.status not in _OPEN:
            return payment
        processor = self._c.processors.get(payment.processor)
        if processor is None:
            return payment
        try:
            result = await processor.find(payment.processor_key)
        except ProcessorError as e:
            _log.info(
                "could not settle payment now: %s",
                e.__class__.__name__,
                extra={"payment": payment.id},
            )
            return payment
        age = now() - payment.created_at
        if result is None:
            if age > datetime.timedelta(seconds=self._c.reconcile_after):
                # The processor never received it: nothing was charged, free the invoice.
                return await self._c.store.update_payment(payment.id, "failed", "not_received")
            return payment
        if result.status == payment.status:
            return payment
        try:
            updated = await self._c.store.update_payment(
                payment.id,
                result.status,
                decline_reason=result.decline_code or "",
                challenge_url=result.challenge_url or "",
                processor_ref=result.id,
            )
        except PaymentFinal:  # settled meanwhile by another request or sidecar
            return await self._c.store.get_payment_any_owner(payment.id)
        self._c.count_outcome(result.status)
        await self._c.store.audit("reconciler", f"payment.{result.status}", payment.id, {})
        return updated

    async def unreachable_processors(self) -> list[str]:
        down = []
        for name, processor in self._c.processors.items():
            try:
                await processor.ping()
            except ProcessorError:
                down.append(name)
        return down

    async def reconcile_once(self) -> int:
        """Settle payments open longer than ``reconcile_after``; return how many changed."""
        cutoff = now() - datetime.timedelta(seconds=self._c.reconcile_after)
        changed = 0
        for payment in await self._c.store.stale_payments(_OPEN, cutoff):
            if (await self.settle(payment)).status != payment.status:
                changed += 1
        return changed
