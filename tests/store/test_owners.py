"""The store keys owners by addresses.normalize, the rule of tokens and recipient hashes:
another spelling of an owner is refused, never folded into someone else."""

from __future__ import annotations

import pytest

from inboxpay.store.model import Address
from inboxpay.store.sql import SqlStore

from .samples import method, payment

pytestmark = pytest.mark.asyncio

KATE = "kate@client.example"


async def test_an_owner_in_another_spelling_is_refused(store: SqlStore) -> None:
    await store.put_billing_profile(KATE, "Kate", KATE, Address())
    for spelling in ("Kate@Client.Example", " kate@client.example", "kate@client.example."):
        with pytest.raises(ValueError, match="normalised"):
            await store.get_billing_profile(spelling)
        with pytest.raises(ValueError, match="normalised"):
            await store.add_payment_method(method(spelling))
        with pytest.raises(ValueError, match="normalised"):
            await store.create_payment(payment(spelling))
        with pytest.raises(ValueError, match="normalised"):
            await store.count_attempts(spelling, "k", "s", payment().created_at)


async def test_a_kelvin_sign_owner_is_someone_else(store: SqlStore) -> None:
    await store.put_billing_profile(KATE, "Kate", KATE, Address())
    kelvin = "\u212aate@client.example"  # normalised as written: its own owner
    assert await store.get_billing_profile(kelvin) is None
