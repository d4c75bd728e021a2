"""Payment methods (saved cards) and the billing profile: what a user keeps in the vault.

Only brand, last4 and expiry are stored in clear; number and holder name are
sealed per record. Responses never carry the number.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import asdict
from typing import Any

from inboxpay.config import LimitsConfig
from inboxpay.sidecar.auth import Principal
from inboxpay.sidecar.errors import BadRequest, TooManyRequests
from inboxpay.sidecar.metrics import Metrics
from inboxpay.store.api import Store
from inboxpay.store.model import Address, BillingProfile, PaymentMethod
from inboxpay.vault import VaultError, paymentcard
from inboxpay.vault.envelope import Sealed, Vault

ADD_KIND = "payment_method_add"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def address(data: dict[str, Any] | None) -> Address:
    data = dict(data or {})
    if data.get("country"):
        data["country"] = str(data["country"]).upper()
    return Address(**data)


def card_data_error(e: paymentcard.CardDataError, field: str | None = None) -> BadRequest:
    return BadRequest(str(e), e.code, field)


def expiry(body: dict[str, Any], current: PaymentMethod | None = None) -> tuple[int, int]:
    """(month, year) from ``expiry`` text or ``exp_month``/``exp_year``, judged here only
    (clients send what the user typed); BadRequest naming the field otherwise."""
    typed = body.get("expiry")
    numbers = [name for name in ("exp_month", "exp_year") if name in body]
    if typed is not None and numbers:
        raise BadRequest(
            "give expiry or exp_month and exp_year, not both", "invalid_field", "expiry"
        )
    try:
        if typed is not None:
            return paymentcard.parse_expiry(typed)
        if current is None and len(numbers) < 2:
            raise BadRequest(
                "expiry (or exp_month and exp_year) is required", "missing_field", "expiry"
            )
        month, year = (current.exp_month, current.exp_year) if current else (0, 0)
        return paymentcard.validate_expiry(body.get("exp_month", month), body.get("exp_year", year))
    except paymentcard.CardDataError as e:
        raise card_data_error(e, "expiry") from None


def _expired(method: PaymentMethod) -> bool:
    try:
        paymentcard.validate_expiry(method.exp_month, method.exp_year)
    except paymentcard.CardDataError:
        return True
    return False


def method_json(method: PaymentMethod, name: str) -> dict[str, Any]:
    return {
        "id": method.id,
        "brand": method.brand,
        "last4": method.last4,
        "exp_month": method.exp_month,
        "exp_year": method.exp_year,
        # Judged here (Anywhere-on-Earth), so that no client judges it in its own zone.
        "expired": _expired(method),
        "name": name,
        "billing_address": asdict(method.billing_address),
        "nickname": method.nickname,
        "created_at": method.created_at.isoformat(),
    }


def profile_json(profile: BillingProfile | None) -> dict[str, Any]:
    if profile is None:
        return {"name": "", "email": "", "address": asdict(Address()), "updated_at": None}
    return {
        "name": profile.name,
        "email": profile.email,
        "address": asdict(profile.address),
        "updated_at": profile.updated_at.isoformat(),
    }


class Wallet:
    """The one user of the vault in the sidecar: every seal and open is counted here."""

    def __init__(self, store: Store, vault: Vault, limits: LimitsConfig, metrics: Metrics) -> None:
        self._store = store
        self._vault = vault
        self._limits = limits
        self._vault_ops = metrics.vault

    def holder_name(self, method: PaymentMethod) -> str:
        return self.secret(method)["name"]

    def secret(self, method: PaymentMethod) -> dict[str, str]:
        """Number and holder name, decrypted for this call only."""
        try:
            secret = self._vault.open(
                method.id, method.owner, method.sealed, method.wrapped_key, method.kek_version
            )
        except VaultError:
            self._vault_ops.labels("open", "error").inc()
            raise
        self._vault_ops.labels("open", "ok").inc()
        return secret

    def _seal(self, method_id: str, owner: str, secret: dict[str, str]) -> Sealed:
        try:
            sealed = self._vault.seal(method_id, owner, secret)
        except VaultError:
            self._vault_ops.labels("seal", "error").inc()
            raise
        self._vault_ops.labels("seal", "ok").inc()
        return sealed

    async def add(self, user: Principal, body: dict[str, Any]) -> dict[str, Any]:
        since = now() - datetime.timedelta(days=1)
        added = await self._store.count_attempts(user.sub, ADD_KIND, "*", since)
        if added >= self._limits.payment_methods_per_day:
            raise TooManyRequests("too many payment methods added today", "rate_limited")
        try:
            number = paymentcard.validate_number(body["number"])
        except paymentcard.CardDataError as e:
            raise card_data_error(e, "number") from None
        month, year = expiry(body)
        # Counted and recorded at once (the check above is only the early answer).
        limit = self._limits.payment_methods_per_day
        if not await self._store.take_attempt(user.sub, ADD_KIND, "*", since, limit):
            raise TooManyRequests("too many payment methods added today", "rate_limited")
        method_id = "pm_" + secrets.token_hex(12)
        sealed = self._seal(method_id, user.sub, {"number": number, "name": body["name"]})
        stamp = now()
        method = PaymentMethod(
            id=method_id,
            owner=user.sub,
            brand=paymentcard.brand(number),
            last4=paymentcard.last4(number),
            exp_month=month,
            exp_year=year,
            nickname=body.get("nickname", ""),
            billing_address=address(body.get("billing_address")),
            fingerprint=self._vault.fingerprint(user.sub, number),
            sealed=sealed.sealed,
            wrapped_key=sealed.wrapped_key,
            kek_version=sealed.kek_version,
            created_at=stamp,
            updated_at=stamp,
        )
        del number
        saved = await self._store.add_payment_method(method)  # DuplicatePaymentMethod: a 409
        await self._store.audit(user.sub, "payment_method.add", saved.id, {"last4": saved.last4})
        return method_json(saved, body["name"])

    async def methods(self, user: Principal) -> list[dict[str, Any]]:
        methods = await self._store.list_payment_methods(user.sub)
        return [method_json(m, self.holder_name(m)) for m in methods]

    async def get(self, user: Principal, method_id: str) -> dict[str, Any]:
        method = await self._store.get_payment_method(user.sub, method_id)
        return method_json(method, self.holder_name(method))

    async def update(self, user: Principal, method_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body:
            raise BadRequest("nothing to update", "missing_field")
        current = await self._store.get_payment_method(user.sub, method_id)
        fields: dict[str, Any] = {
            k: v for k, v in body.items() if k not in ("billing_address", "expiry")
        }
        fields["exp_month"], fields["exp_year"] = expiry(body, current)
        if "billing_address" in body:
            fields["billing_address"] = address(body["billing_address"])
        method = await self._store.update_payment_method(user.sub, method_id, **fields)
        await self._store.audit(
            user.sub, "payment_method.update", method_id, {"fields": sorted(body)}
        )
        return method_json(method, self.holder_name(method))

    async def delete(self, user: Principal, method_id: str) -> None:
        await self._store.delete_payment_method(user.sub, method_id)
        await self._store.audit(user.sub, "payment_method.delete", method_id, {})

    async def profile(self, user: Principal) -> dict[str, Any]:
        return profile_json(await self._store.get_billing_profile(user.sub))

    async def put_profile(self, user: Principal, body: dict[str, Any]) -> dict[str, Any]:
        profile = await self._store.put_billing_profile(
            user.sub, body["name"], body["email"], address(body.get("address"))
        )
        return profile_json(profile)
