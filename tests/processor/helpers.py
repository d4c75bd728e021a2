"""Builders for requests and cards, and a runner that drives a ProcessorClient."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
from joserfc.jwk import ECKey

from inboxpay.processor import (
    BillingAddress,
    CardSecret,
    ChargeRequest,
    InvoiceRef,
    Merchant,
    ProcessorClient,
)

T = TypeVar("T")

NEXT_YEAR = datetime.date.today().year + 1
HOLDER = "Ada Lovelace"


@dataclass(frozen=True)
class Keys:
    key_file: Path
    api_key: str
    public_key: ECKey


def card(
    number: str = "4242424242424242",
    cvc: str = "123",
    exp_month: int = 12,
    exp_year: int = NEXT_YEAR,
) -> CardSecret:
    return CardSecret(
        number=number,
        exp_month=exp_month,
        exp_year=exp_year,
        cvc=cvc,
        name=HOLDER,
        billing_address=BillingAddress(line1="12 St James's Square", city="London", country="GB"),
    )


def request(
    key: str | None = None,
    amount_minor: int = 12_50,
    currency: str = "USD",
    return_url: str | None = None,
) -> ChargeRequest:
    return ChargeRequest(
        idempotency_key=key or f"pay_{uuid.uuid4().hex}",
        amount_minor=amount_minor,
        currency=currency,
        merchant=Merchant(partner="xero", account="acct-1", name="Babbage & Co"),
        invoice=InvoiceRef(number="INV-0042", url="https://in.xero.com/inv/42"),
        return_url=return_url,
    )


def drive(
    base_url: str,
    keys: Keys,
    steps: Callable[[ProcessorClient], Awaitable[T]],
    *,
    timeout: float = 5.0,
    api_key: str | None = None,
    public_key: ECKey | None = None,
) -> T:
    """Run ``steps`` against a fresh client in a fresh event loop."""

    async def go() -> T:
        async with aiohttp.ClientSession() as session:
            client = ProcessorClient(
                session,
                base_url,
                api_key or keys.api_key,
                public_key or keys.public_key,
                timeout=timeout,
            )
            return await steps(client)

    return asyncio.run(go())
