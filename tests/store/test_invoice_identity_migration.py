"""Migration 0004 rewrites the invoice keys of existing payments (partner, account, number)
into the key the sidecar now computes (review.invoice_key), on both engines."""

from __future__ import annotations

import pytest

from inboxpay.sidecar.review import invoice_key
from inboxpay.store.migrate import load_migrations, migrate

from .conftest import StoreFactory
from .samples import payment

pytestmark = pytest.mark.asyncio

SEP = "\x1f"


def claims(
    merchant: str, account: str, number: str, amount: str, currency: str
) -> dict[str, object]:
    invoice = {"partner": "xero", "merchant": merchant, "account": account, "number": number}
    return {"invoice": invoice | {"amount": amount, "currency": currency}}


async def test_old_invoice_keys_are_rewritten(open_stores: StoreFactory) -> None:
    store = await open_stores(migrated=False)
    await migrate(store.db, load_migrations(store.engine)[:3])
    rows = [
        # (merchant, account, number, amount, minor, currency)
        ("Wide World Importers", "ACC-7", "INV-0042", "1234.50", 123450, "USD"),
        ("Northwind Traders", "", "INV-1001", "410.00", 41000, "EUR"),
        ("Contoso Ltd", "CUST-1", "INV-1001", "5000", 5000, "JPY"),
        ("Café Ünïcode", "ACC-é", "Nº 7", "1.500", 1500, "BHD"),
    ]
    made = []
    for merchant, account, number, amount, minor, currency in rows:
        old = SEP.join(("xero", account, number))
        details = {"merchant": merchant, "invoice_number": number, "amount": amount}
        p = payment(invoice_key=old, amount_minor=minor, currency=currency, details=details)
        made.append(
            (await store.create_payment(p), claims(merchant, account, number, amount, currency))
        )
    # Not an old key this migration understands: left exactly as it is.
    stray = await store.create_payment(payment(invoice_key="xero|acct-1|INV-0001"))

    assert 4 in await store.migrate()
    for created, card in made:
        migrated = await store.get_payment_any_owner(created.id)
        assert migrated.invoice_key == invoice_key(card), created.details
        assert await store.active_payment_for_invoice(invoice_key(card)) == migrated
    assert (await store.get_payment_any_owner(stray.id)).invoice_key == stray.invoice_key
