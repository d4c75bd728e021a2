"""Issue 4: the whole chain with real components, in one run.

A genuine Xero invoice (signed by post.xero.test, sent from Xero's host) and a spoofed one
(From post.xero.test, signed by attacker.test, with a forged InboxPay-Card header of its
own) go through the real Postfix with the real milter to the demo user's Maildir. The
sidecar's demo inbox, opened in headless Chromium, offers to pay the genuine one only;
the demo user pays it through the pane (a declined card first, then another card) and
the sandbox processor's ledger holds exactly one charge; a second visit says "already
paid"; another user, opening the same card through the test webmail, is refused.

Each screen is saved in test-artifacts/chain/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from browser.chromium import PaneSession
from browser.test_pane import PAYMENT_ID, fill_new_card, heading
from browser.world import DECLINE, GOOD_CODE, VISA_OK
from e2e import checks, rawmime
from e2e.mail import Delivery
from e2e.messages import Invoice, invoice_mail
from e2e.scenarios import XERO_FROM, forged_card, from_xero, signed_xero_invoice
from e2e.session import milter_checked
from e2e.world import ATTACKER_MX, CAROL
from playwright.sync_api import Locator, Page, expect

from .world import DEMO_USER, Chain

GENUINE = Invoice(number="INV-CHAIN-1", amount="1234.50", currency="USD")
SPOOFED = Invoice(number="INV-SPOOF-9", amount="9999.00", currency="USD")
AMOUNT = "$1,234.50"
MERCHANT = GENUINE.merchant
#: A user of this mail system who is not a recipient of the invoice.
OTHER_USER = CAROL


@dataclass(frozen=True)
class Inbox:
    genuine: Delivery
    spoofed: Delivery

    @property
    def card(self) -> str:
        """The genuine invoice's InboxPay-Card as delivered (folded, as webmail finds it)."""
        (card,) = rawmime.values(self.genuine.raw, checks.CARD)
        return card


@pytest.fixture(scope="module")
def inbox(chain: Chain) -> Inbox:
    mta = chain.mta
    with milter_checked(chain.postfix, chain.milter):
        genuine = from_xero(mta, signed_xero_invoice(mta, GENUINE, to=[DEMO_USER]), [DEMO_USER])
        forged = f"{checks.CARD}: {forged_card()}"
        spoofed_mail = invoice_mail(SPOOFED, XERO_FROM, [DEMO_USER], extra_headers=[forged])
        spoofed = mta.deliver_one(
            mta.dkim["attacker.test"].sign(spoofed_mail),
            ATTACKER_MX,
            "bounce@attacker.test",
            DEMO_USER,
        )
    claims = checks.card_claims(genuine[0], mta.card_keys.verifier)
    assert claims["invoice"]["number"] == GENUINE.number, claims
    checks.assert_removed(spoofed, "dkim_fail", "unaligned")
    return Inbox(genuine[0], spoofed)


def message(page: Page, number: str) -> Locator:
    """The demo inbox's entry for the invoice with this number."""
    return page.locator("li.message").filter(has=page.locator(".subject", has_text=number))


def review_and_pay(page: Page, number: str) -> Locator:
    return message(page, number).get_by_role("button", name="Review and pay")


def test_only_the_genuine_invoice_offers_to_pay(
    chain: Chain, inbox: Inbox, make_session: Callable[..., PaneSession]
) -> None:
    session = make_session(width=1280, height=900)
    page = session.page
    page.goto(chain.demo_url)
    expect(page.get_by_role("heading", name=f"Demo inbox of {DEMO_USER}")).to_be_visible()
    expect(page.locator("li.message")).to_have_count(2)

    spoofed = message(page, SPOOFED.number)
    expect(spoofed).to_have_count(1)
    expect(spoofed.get_by_role("button")).to_have_count(0)
    expect(spoofed.locator(".note")).to_have_text("no InboxPay card")  # the forged one is gone
    expect(spoofed.locator(".verdict")).to_contain_text("removed")

    genuine = message(page, GENUINE.number)
    expect(genuine.locator(".verdict")).to_have_text("InboxPay-Verdict: card")
    expect(review_and_pay(page, GENUINE.number)).to_be_visible()
    expect(page.get_by_role("button", name="Review and pay")).to_have_count(1)
    page.screenshot(path=str(session.artifacts / "01-demo-inbox.png"), full_page=True)


def test_demo_user_pays_after_a_decline_and_only_once(
    chain: Chain, inbox: Inbox, make_session: Callable[..., PaneSession]
) -> None:
    session = make_session(width=1280, height=900)
    session.secrets |= {VISA_OK, DECLINE, GOOD_CODE}
    page = session.page
    assert chain.world.ledger() == []
    page.goto(chain.demo_url)
    review_and_pay(page, GENUINE.number).click()
    f = session.frame

    # Review: what the milter signed, and why it can be trusted.
    heading(f, "Review the invoice")
    expect(f.locator("#review-amount")).to_have_text(AMOUNT)
    expect(f.locator("#review-merchant")).to_have_text(MERCHANT)
    expect(f.locator("#review-partner")).to_have_text("Xero")
    expect(f.locator("#review-number")).to_have_text(GENUINE.number)
    expect(f.locator("#review-trust")).to_contain_text("Signed by post.xero.test (DKIM: pass)")
    session.shot("02-review")

    # A card the bank declines: nothing is charged, and the way back is offered.
    f.get_by_role("button", name="Continue").click()
    heading(f, "Add a card")
    fill_new_card(f, DECLINE)
    session.shot("03-payment-details")
    f.get_by_role("button", name="Save and continue").click()
    heading(f, "Confirm and pay")
    expect(f.locator("#code-summary")).to_contain_text("Visa ending 0002")
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    session.shot("04-security-code")
    f.get_by_role("button", name=f"Pay {AMOUNT}").click()
    heading(f, "Payment declined")
    expect(f.locator("#declined-code")).to_contain_text("generic_decline")
    session.shot("05-declined")
    assert chain.world.ledger() == []

    # Back, another card, and pay.
    f.get_by_role("button", name="Use another card").click()
    heading(f, "Choose how to pay")
    f.get_by_role("button", name="Add a card").click()
    heading(f, "Add another card")
    fill_new_card(f, VISA_OK)
    session.shot("06-another-card")
    f.get_by_role("button", name="Save and continue").click()
    heading(f, "Confirm and pay")
    expect(f.locator("#code-summary")).to_contain_text("Visa ending 4242")
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    session.shot("07-security-code")
    f.get_by_role("button", name=f"Pay {AMOUNT}").click()

    heading(f, "Payment complete")
    expect(f.locator("#receipt-amount")).to_have_text(AMOUNT)
    expect(f.locator("#receipt-merchant")).to_have_text(MERCHANT)
    expect(f.locator("#receipt-invoice")).to_have_text(GENUINE.number)
    expect(f.locator("#receipt-card")).to_have_text("Visa ending 4242")
    expect(f.locator("#receipt-id")).to_have_text(PAYMENT_ID)
    payment_id = f.locator("#receipt-id").inner_text()
    session.shot("08-receipt")
    status = page.locator("#demo-status")
    expect(status).to_have_text(f"Pane result: succeeded (payment {payment_id}).")

    # The processor's own ledger: exactly one charge, of this amount.
    charges = chain.world.ledger()
    assert [(c["amount_minor"], c["currency"]) for c in charges] == [(123450, "USD")], charges

    # Reopened from the inbox: already paid, nothing to press, nothing charged.
    review_and_pay(page, GENUINE.number).click()
    heading(f, "Review the invoice")
    expect(f.locator("#review-notice")).to_contain_text("This invoice is already paid")
    expect(f.get_by_role("button", name="Continue")).to_have_count(0)
    expect(f.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    expect(status).to_have_text(f"Pane result: already_paid (payment {payment_id}).")
    session.shot("09-already-paid")
    assert len(chain.world.ledger()) == 1


def test_another_user_cannot_open_the_card(
    chain: Chain, inbox: Inbox, make_session: Callable[..., PaneSession]
) -> None:
    token = chain.world.token(OTHER_USER)
    compact = re.sub(r"\s+", "", inbox.card)
    status, body = chain.world.api("POST", "/v1/cards/verify", token, {"card": compact})
    assert (status, body["error"]["code"]) == (403, "not_a_recipient"), body

    session = make_session()
    f = session.open(inbox.card, token)  # through the browser suite's test webmail
    heading(f, "This invoice was not addressed to you")
    expect(f.get_by_role("button", name="Continue")).to_have_count(0)
    expect(f.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    result = session.wait_message("inboxpay:result")
    assert result == {
        "type": "inboxpay:result",
        "status": "unavailable",
        "payment_id": None,
        "reason": "not_a_recipient",
    }
    session.shot("10-not-addressed-to-you")
