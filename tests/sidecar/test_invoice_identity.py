"""One invoice is one invoice: two merchants' INV-1001 are two invoices, whatever the card's
account says, and a payment's id is shown only to the people its card was addressed to."""

from __future__ import annotations

import pytest

from .harness import ALICE, BOB, MALLORY, Env

pytestmark = pytest.mark.asyncio

CAROL = "carol@example.org"


# "" : the markup named no account; "CUST-1": it named the customer's accountId, which
# two merchants may well both use.
@pytest.mark.parametrize("account", ["", "CUST-1"])
async def test_two_merchants_with_the_same_invoice_number(env: Env, account: str) -> None:
    async with env.sidecar() as api:
        alice, bob = await api.method(ALICE), await api.method(BOB)
        x = env.card([ALICE], merchant="Northwind Traders", account=account, number="INV-1001")
        y = env.card(
            [BOB], merchant="Contoso Ltd", account=account, number="INV-1001", amount="5000.00"
        )
        paid = await api.pay(ALICE, x, alice)
        assert (paid.status, paid.body["status"]) == (201, "succeeded"), paid

        review = await api.verify(BOB, y)
        assert (review.body["status"], review.body["payment"]) == ("payable", None), review
        by_bob = await api.pay(BOB, y, bob)
        assert (by_bob.status, by_bob.body["status"]) == (201, "succeeded"), by_bob
        assert paid.body["id"] not in by_bob.text
    assert sorted(c["amount_minor"] for c in await env.charges()) == [123450, 500000]


async def test_the_amount_and_currency_are_part_of_the_invoice(env: Env) -> None:
    async with env.sidecar() as api:
        method = await api.method(ALICE)
        first = env.card([ALICE], number="INV-7", amount="10.00", currency="EUR")
        assert (await api.pay(ALICE, first, method)).body["status"] == "succeeded"
        for amount, currency in (("12.00", "EUR"), ("10.00", "USD")):
            other = env.card([ALICE], number="INV-7", amount=amount, currency=currency)
            assert (await api.verify(ALICE, other)).body["status"] == "payable"
        again = env.card([ALICE], number="INV-7", amount="10.00", currency="EUR")
        assert (await api.verify(ALICE, again)).body["status"] == "paid"


async def test_a_payment_id_only_for_recipients_of_its_card(env: Env) -> None:
    async with env.sidecar() as api:
        method = await api.method(ALICE)
        # The same invoice mailed twice: to Alice and Bob, and later to Carol alone.
        first = env.card([ALICE, BOB], number="INV-2002")
        resent = env.card([CAROL], number="INV-2002")
        paid = await api.pay(ALICE, first, method)
        assert paid.status == 201, paid
        shown = {"id": paid.body["id"], "status": "succeeded"}

        for user in (ALICE, BOB):  # the payer, and who else the paid card was for
            assert (await api.verify(user, first)).body["payment"] == shown
        # Carol learns that her invoice is paid, never which payment paid it.
        carol = await api.verify(CAROL, resent)
        assert (carol.body["status"], carol.body["payment"]) == ("paid", None), carol
        assert paid.body["id"] not in carol.text
        refused = await api.pay(CAROL, resent, await api.method(CAROL))
        assert (refused.status, refused.code) == (409, "already_paid"), refused
        assert paid.body["id"] not in refused.text
        # And someone the invoice was never sent to learns nothing at all.
        assert (await api.verify(MALLORY, first)).status == 403


async def test_a_card_whose_identity_is_malformed_is_a_400(env: Env) -> None:
    async with env.sidecar() as api:
        for card in (
            env.card([ALICE], merchant="Acme\x1fINV"),  # would shift the key's parts
            env.card([ALICE], amount="1.005"),  # not an amount of USD
            env.card([ALICE], amount="1.00", currency="XYZ"),
        ):
            r = await api.verify(ALICE, card)
            assert (r.status, r.code) == (400, "malformed_card"), r
