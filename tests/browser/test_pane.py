"""The task pane in a real headless Chromium, embedded cross-origin by a test webmail,
paying through the real sidecar and sandbox processor processes.

Each test uses its own user, so saved cards and payments of one never meet another's.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from playwright.sync_api import FrameLocator, Page, Route, expect

from . import a11y
from .conftest import PaneSession
from .world import DECLINE, GOOD_CODE, MERCHANT, NEXT_YEAR, THREE_DS, VISA_OK, World

SPACED_VISA = "4242 4242 4242 4242"
PAYMENT_ID = re.compile(r"pay_[0-9a-f]{24}")


def charge_ids(world: World) -> set[str]:
    return {c["id"] for c in world.ledger()}


def new_charges(world: World, before: set[str]) -> list[dict[str, object]]:
    return [c for c in world.ledger() if c["id"] not in before]


def heading(f: FrameLocator, name: str) -> None:
    expect(f.get_by_role("heading", name=name, exact=True)).to_be_visible()


def fill_new_card(f: FrameLocator, number: str) -> None:
    f.get_by_role("textbox", name="Card number").fill(number)
    f.get_by_role("textbox", name="Expiry date").fill(f"12/{NEXT_YEAR % 100:02d}")
    f.get_by_role("textbox", name="Name on card").fill("Augusta Ada King-Noel")
    f.get_by_role("textbox", name="Address line 1").fill("12 St James's Square")
    f.get_by_role("textbox", name="City").fill("London")
    f.get_by_role("textbox", name="Postal code").fill("SW1Y 4LE")
    f.get_by_role("textbox", name="Country").fill("GB")


def to_security_code(f: FrameLocator) -> None:
    """Review, then the saved cards (the first one is chosen), then the security code."""
    f.get_by_role("button", name="Continue").click()
    heading(f, "Choose how to pay")
    f.get_by_role("button", name="Continue").click()
    heading(f, "Confirm and pay")


def test_first_payment_then_a_second_visit(pane: PaneSession, world: World) -> None:
    user = "ada@example.com"
    pane.secrets |= {VISA_OK, SPACED_VISA, GOOD_CODE}
    card = world.card([user], amount="1234.50", currency="USD", number="INV-0042")
    before = charge_ids(world)

    # 1. Review
    f = pane.open(card, world.token(user))
    heading(f, "Review the invoice")
    expect(f.locator("#review-amount")).to_have_text("$1,234.50")
    expect(f.locator("#review-merchant")).to_have_text(MERCHANT)
    expect(f.locator("#review-partner")).to_have_text("Xero")
    expect(f.locator("#review-number")).to_have_text("INV-0042")
    due = datetime.date.today() + datetime.timedelta(days=14)
    expect(f.locator("#review-due")).to_have_text(f"{due:%B} {due.day}, {due.year}")
    expect(f.locator("#review-overdue")).to_be_hidden()
    trust = f.locator("#review-trust")
    expect(trust).to_contain_text("Signed by post.xero.com (DKIM: pass)")
    expect(trust).to_contain_text("post.xero.com authorizes (SPF: pass)")
    expect(trust).to_contain_text("aligned")
    link = f.get_by_role("link", name=re.compile("View the full invoice"))
    expect(link).to_have_attribute("href", re.compile(r"^https://in\.xero\.com/view/"))
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile("noopener"))
    a11y.check(pane.pane_frame())
    pane.shot("01-review")

    # 2. Payment and billing details, first time
    f.get_by_role("button", name="Continue").click()
    heading(f, "Add a card")
    f.get_by_role("button", name="Save and continue").click()  # empty: hints, no request
    expect(f.locator("#add-number-error")).to_be_visible()
    fill_new_card(f, "4242 4242 4242 4241")  # a Luhn slip
    f.get_by_role("button", name="Save and continue").click()
    expect(f.locator("#add-number-error")).to_contain_text("not a valid card number")
    expect(f.get_by_role("textbox", name="Card number")).to_have_attribute("aria-invalid", "true")
    a11y.check(pane.pane_frame())
    pane.secrets.add("4242 4242 4242 4241")
    f.get_by_role("textbox", name="Card number").fill(SPACED_VISA)
    a11y.check(pane.pane_frame())
    pane.shot("02-payment-details")
    f.get_by_role("button", name="Save and continue").click()

    # 3. Security code
    heading(f, "Confirm and pay")
    expect(f.locator("#code-summary")).to_contain_text("Visa ending 4242")
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    a11y.check(pane.pane_frame())
    pane.shot("03-security-code")
    f.get_by_role("button", name="Pay $1,234.50").click()

    # 4. Result
    heading(f, "Payment complete")
    expect(f.locator("#receipt-amount")).to_have_text("$1,234.50")
    expect(f.locator("#receipt-merchant")).to_have_text(MERCHANT)
    expect(f.locator("#receipt-invoice")).to_have_text("INV-0042")
    expect(f.locator("#receipt-card")).to_have_text("Visa ending 4242")
    expect(f.locator("#receipt-id")).to_have_text(PAYMENT_ID)
    expect(f.locator("#receipt-time")).not_to_be_empty()
    payment_id = f.locator("#receipt-id").inner_text()
    a11y.check(pane.pane_frame())
    pane.shot("04-receipt")
    result = pane.wait_message("inboxpay:result")
    assert result == {"type": "inboxpay:result", "status": "succeeded", "payment_id": payment_id}
    charges = new_charges(world, before)
    assert len(charges) == 1, charges
    assert (charges[0]["amount_minor"], charges[0]["currency"]) == (123450, "USD")

    # A second visit to the same invoice: already paid, nothing to press.
    f = pane.open(card, world.token(user))
    heading(f, "Review the invoice")
    expect(f.locator("#review-notice")).to_contain_text("This invoice is already paid")
    a11y.check(pane.pane_frame())
    expect(f.get_by_role("button", name="Continue")).to_have_count(0)
    expect(f.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    pane.shot("06-already-paid")
    result = pane.wait_message("inboxpay:result")
    assert (result["status"], result["payment_id"]) == ("already_paid", payment_id)

    # The next invoice offers the saved card (and its billing details).
    f = pane.open(world.card([user], amount="99.00"), world.token(user))
    f.get_by_role("button", name="Continue").click()
    heading(f, "Choose how to pay")
    saved = f.get_by_role("radio", name=re.compile("Visa ending 4242"))
    expect(saved).to_be_checked()
    expect(f.locator("#methods-list")).to_contain_text(f"Expires 12/{NEXT_YEAR % 100:02d}")
    expect(f.locator("#methods-list")).to_contain_text("12 St James's Square, London")
    expect(f.get_by_role("button", name="Edit Visa ending 4242")).to_be_visible()
    expect(f.get_by_role("button", name="Delete Visa ending 4242")).to_be_visible()
    a11y.check(pane.pane_frame())
    pane.shot("05-saved-cards")
    assert len(new_charges(world, before)) == 1


def test_the_server_judges_the_expiry_and_the_pane_shows_its_error(
    pane: PaneSession, world: World
) -> None:
    user = "kim@example.com"
    pane.secrets |= {SPACED_VISA}
    f = pane.open(world.card([user], amount="3.00"), world.token(user))
    f.get_by_role("button", name="Continue").click()
    heading(f, "Add a card")
    fill_new_card(f, SPACED_VISA)
    expiry = f.get_by_role("textbox", name="Expiry date")
    # "12/99" is December 1999 to the server (a year is never read 73 years ahead), not
    # 2099 as a pane guessing "20" + "99" would have it; and 13 is no month.
    for typed, said in (
        ("12/99", "This card has expired."),
        ("13/30", "Enter the expiry date as MM/YY, for example 08/29."),
    ):
        expiry.fill(typed)
        f.get_by_role("button", name="Save and continue").click()
        expect(f.locator("#add-expiry-error")).to_have_text(said)
        expect(expiry).to_have_attribute("aria-invalid", "true")
        expect(expiry).to_be_focused()
        a11y.check(pane.pane_frame())
    expiry.fill(f"12 {NEXT_YEAR}")  # sent as 12/YYYY
    f.get_by_role("button", name="Save and continue").click()
    heading(f, "Confirm and pay")
    expect(f.locator("#code-summary")).to_contain_text("Visa ending 4242")


def test_declined_card_says_why_and_offers_a_way_back(
    make_pane: Callable[..., PaneSession], world: World
) -> None:
    pane = make_pane(locale="de-DE")
    user = "bob@example.com"
    pane.secrets |= {DECLINE, GOOD_CODE}
    before = charge_ids(world)
    f = pane.open(world.card([user], amount="1234.50", currency="EUR"), world.token(user))
    # Amounts follow the user's locale: German groups with "." and puts the € after.
    expect(f.locator("#review-amount")).to_have_text(re.compile(r"^1\.234,50\s€$"))
    f.get_by_role("button", name="Continue").click()
    heading(f, "Add a card")
    fill_new_card(f, DECLINE)
    f.get_by_role("button", name="Save and continue").click()
    heading(f, "Confirm and pay")
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    f.get_by_role("button", name=re.compile("^Pay")).click()

    heading(f, "Payment declined")
    expect(f.locator("#declined-reason")).to_have_text(re.compile("bank declined the payment"))
    expect(f.locator("#declined-code")).to_contain_text("generic_decline")
    a11y.check(pane.pane_frame())
    pane.shot("07-declined")
    assert new_charges(world, before) == []

    # The ways back: try again (a fresh security code), or another card.
    f.get_by_role("button", name="Try again").click()
    heading(f, "Confirm and pay")
    expect(f.get_by_role("textbox", name="Security code")).to_have_value("")
    f.get_by_role("button", name="Change card").click()
    heading(f, "Choose how to pay")
    expect(f.get_by_role("radio", name=re.compile("Visa ending 0002"))).to_be_checked()
    f.get_by_role("button", name="Add a card").click()
    heading(f, "Add another card")
    expect(f.get_by_role("textbox", name="Name on card")).to_have_value(
        "Augusta Ada King-Noel"
    )  # profile
    a11y.check(pane.pane_frame())
    assert not any(m["type"] == "inboxpay:result" for m in pane.received())


def test_three_d_secure_challenge_then_receipt(pane: PaneSession, world: World) -> None:
    user = "carol@example.com"
    pane.secrets |= {THREE_DS, GOOD_CODE}
    world.save_card(user, THREE_DS)
    before = charge_ids(world)
    f = pane.open(world.card([user], amount="42.00"), world.token(user))
    to_security_code(f)
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    f.get_by_role("button", name="Pay $42.00").click()

    heading(f, "Your bank wants to confirm it's you")
    link = f.get_by_role("link", name=re.compile("Open your bank's check"))
    expect(link).to_have_attribute("rel", re.compile("noopener"))
    a11y.check(pane.pane_frame())
    pane.shot("08-3ds-waiting")
    with pane.context.expect_page() as opened:
        link.click()
    bank: Page = opened.value
    bank.wait_for_load_state()
    assert bank.evaluate("window.opener") is None  # noopener: the bank can't reach us
    expect(bank.get_by_role("heading", name="Sandbox 3-D Secure challenge")).to_be_visible()
    bank.screenshot(path=str(pane.artifacts / "09-3ds-bank-page.png"), full_page=True)
    assert new_charges(world, before) == []  # nothing moved before the challenge
    bank.get_by_role("button", name="Complete authentication").click()
    expect(bank.get_by_role("heading", name="Authentication complete")).to_be_visible()

    # The pane notices by itself (it polls GET /v1/payments/{id}).
    heading(f, "Payment complete")
    expect(f.locator("#receipt-card")).to_have_text("Visa ending 3155")
    expect(f.locator("#receipt-amount")).to_have_text("$42.00")
    assert pane.wait_message("inboxpay:result")["status"] == "succeeded"
    charges = new_charges(world, before)
    assert len(charges) == 1 and charges[0]["amount_minor"] == 4200, charges


def _payment_posts(pane: PaneSession) -> list[str]:
    """The Idempotency-Key of every POST /v1/payments the page sent."""
    return [
        r.headers.get("idempotency-key", "")
        for r in pane.requests
        if r.method == "POST" and r.url == f"{pane.world.sidecar}/v1/payments"
    ]


def test_double_click_on_pay_charges_once(pane: PaneSession, world: World) -> None:
    user = "dave@example.com"
    pane.secrets.add(GOOD_CODE)
    world.save_card(user)
    before = charge_ids(world)
    f = pane.open(world.card([user], amount="10.00"), world.token(user))
    to_security_code(f)
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    f.get_by_role("button", name="Pay $10.00").dblclick()
    heading(f, "Payment complete")
    keys = _payment_posts(pane)
    assert len(keys) == 1 and keys[0], keys
    assert len(new_charges(world, before)) == 1


def test_a_retry_after_a_lost_answer_replays_and_charges_once(
    pane: PaneSession, world: World
) -> None:
    user = "erin@example.com"
    pane.secrets.add(GOOD_CODE)
    world.save_card(user)
    before = charge_ids(world)
    dropped: list[int] = []

    def lose_first_answer(route: Route) -> None:
        if route.request.method == "POST" and not dropped:
            response = route.fetch()  # the sidecar charges...
            dropped.append(response.status)
            route.abort("connectionreset")  # ...and the answer never reaches the page
        else:
            route.continue_()

    pane.page.route(f"{world.sidecar}/v1/payments", lose_first_answer)
    f = pane.open(world.card([user], amount="11.00"), world.token(user))
    to_security_code(f)
    f.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    f.get_by_role("button", name="Pay $11.00").click()
    expect(f.locator("#code-error")).to_contain_text("not be charged twice")
    a11y.check(pane.pane_frame())
    assert dropped == [201] and len(new_charges(world, before)) == 1
    f.get_by_role("button", name="Pay $11.00").click()
    heading(f, "Payment complete")
    keys = _payment_posts(pane)
    assert len(keys) == 2 and keys[0] == keys[1], keys  # one attempt, one key
    assert len(new_charges(world, before)) == 1


def test_a_card_for_someone_else_is_not_payable(pane: PaneSession, world: World) -> None:
    card = world.card(["someone-else@example.com"])
    f = pane.open(card, world.token("frank@example.com"))
    heading(f, "This invoice was not addressed to you")
    expect(f.get_by_role("button", name="Continue")).to_have_count(0)
    expect(f.get_by_role("button", name=re.compile("^Pay"))).to_have_count(0)
    a11y.check(pane.pane_frame())
    pane.shot("10-not-addressed-to-you")
    result = pane.wait_message("inboxpay:result")
    assert (result["status"], result["reason"]) == ("unavailable", "not_a_recipient")


def test_messages_from_other_origins_are_ignored(pane: PaneSession, world: World) -> None:
    user = "grace@example.com"
    # The webmail waits; a hidden iframe from a port not in webmail_origins posts the
    # open message to the pane, again and again.
    f = pane.open(world.card([user]), world.token(user), manual=True, stranger=True)
    stranger = next(fr for fr in pane.page.frames if "/stranger-frame/" in fr.url)
    # Polling, not requestAnimationFrame: a display:none frame never paints.
    stranger.wait_for_function("left === 0", polling=100)  # every one of its posts was sent
    pane.page.wait_for_timeout(300)
    heading(f, "Waiting for your mail app…")
    assert [m["type"] for m in pane.received()] == ["inboxpay:ready"]
    assert not any("/v1/" in r.url for r in pane.requests)
    # The pane was listening all along: the real parent's message opens the invoice.
    pane.page.evaluate("openPane()")
    heading(f, "Review the invoice")


def test_a_stranger_cannot_frame_the_pane(pane: PaneSession, world: World) -> None:
    pane.csp_refusal_expected = True  # Chromium reports the frame-ancestors refusal
    user = "heidi@example.com"
    pane.open(world.card([user]), world.token(user), page="stranger-parent")
    pane.page.wait_for_load_state("load")
    pane.page.wait_for_timeout(300)
    assert any(r.url == world.pane_url for r in pane.requests)  # asked for...
    assert not any(r.url.endswith("/pane/pane.js") for r in pane.requests)  # ...not shown
    assert all(not fr.url.startswith(world.pane_url) for fr in pane.page.frames)


def _tab_to(page: Page, f: FrameLocator, element_id: str, limit: int = 25) -> list[str]:
    """Press Tab until the pane's focused element is ``element_id``; the ids passed."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = f.locator(":focus")
        current = focused.get_attribute("id") if focused.count() else None
        passed.append(current or "")
        if current == element_id:
            return passed
    raise AssertionError(f"Tab never reached #{element_id}; passed {passed}")


def test_keyboard_only_at_360_px(pane: PaneSession, world: World) -> None:
    user = "ivan@example.com"
    pane.secrets |= {VISA_OK, GOOD_CODE}
    page = pane.page
    assert page.viewport_size == {"width": 360, "height": 740}
    f = pane.open(world.card([user], amount="5.00"), world.token(user))
    heading(f, "Review the invoice")
    # From the top of the webmail, Tab walks into the pane: the invoice link, then Continue.
    assert _tab_to(page, f, "review-continue") == ["review-invoice-link", "review-continue"]
    outline = f.locator("#review-continue").evaluate("(b) => getComputedStyle(b).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press("Enter")

    heading(f, "Add a card")
    order = {
        "add-number": VISA_OK,
        "add-expiry": f"12/{NEXT_YEAR % 100:02d}",
        "add-name": "Ivan Keys",
        "add-line1": "1 Tab Street",
        "add-line2": "",
        "add-city": "Enterville",
        "add-region": "",
        "add-postal": "12345",
    }
    for element_id, text in order.items():
        assert _tab_to(page, f, element_id, limit=1) == [element_id]  # the order, exactly
        if text:
            page.keyboard.type(text)
    assert _tab_to(page, f, "add-country", limit=1) == ["add-country"]
    page.keyboard.press("Control+A")
    page.keyboard.type("US")
    page.keyboard.press("Enter")  # submits the form

    heading(f, "Confirm and pay")
    assert _tab_to(page, f, "code-input") == ["code-input"]
    page.keyboard.type(GOOD_CODE)
    page.keyboard.press("Enter")
    heading(f, "Payment complete")
    expect(f.locator("#receipt-card")).to_have_text("Visa ending 4242")
    page.keyboard.press("Tab")
    expect(f.get_by_role("button", name="Done")).to_be_focused()
    a11y.check(pane.pane_frame())


def test_saved_cards_can_be_edited_and_deleted(pane: PaneSession, world: World) -> None:
    user = "judy@example.com"
    world.save_card(user, VISA_OK)
    world.save_card(user, DECLINE)
    f = pane.open(world.card([user]), world.token(user))
    f.get_by_role("button", name="Continue").click()
    heading(f, "Choose how to pay")
    expect(f.get_by_role("radio")).to_have_count(2)

    f.get_by_role("button", name="Edit Visa ending 0002").click()
    heading(f, "Edit Visa ending 0002")
    a11y.check(pane.pane_frame())
    f.get_by_role("textbox", name="Expiry date").fill(f"03/{(NEXT_YEAR + 1) % 100:02d}")
    f.get_by_role("textbox", name="Nickname").fill("Spare")
    f.get_by_role("textbox", name="City").fill("Bath")
    f.get_by_role("button", name="Save", exact=True).click()
    heading(f, "Choose how to pay")
    spare = f.locator("li.method", has_text="Visa ending 0002 (Spare)")
    expect(spare).to_contain_text(f"Expires 03/{(NEXT_YEAR + 1) % 100:02d}")
    expect(spare).to_contain_text("Bath")

    f.get_by_role("button", name="Delete Visa ending 4242").click()
    keep = f.get_by_role("button", name="Keep")
    expect(keep).to_be_focused()  # the safe choice has the focus
    a11y.check(pane.pane_frame())
    f.get_by_role("button", name="Delete card").click()
    expect(f.get_by_role("radio")).to_have_count(1)
    expect(f.get_by_role("radio", name=re.compile("Visa ending 0002"))).to_be_checked()
    status, listed = world.api("GET", "/v1/payment-methods", world.token(user))
    assert status == 200 and [m["last4"] for m in listed["data"]] == ["0002"]


def test_review_shows_overdue_and_withholds_a_link_off_the_allow_list(
    pane: PaneSession, world: World
) -> None:
    user = "ken@example.com"
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    card = world.card([user], due=yesterday, url="https://attacker.example/invoice")
    f = pane.open(card, world.token(user))
    heading(f, "Review the invoice")
    expect(f.locator("#review-overdue")).to_be_visible()
    expect(f.get_by_role("link")).to_have_count(0)
    expect(f.locator("#review-link")).to_contain_text("not on Xero's list of invoice addresses")
    a11y.check(pane.pane_frame())
    expect(f.get_by_role("button", name="Continue")).to_be_visible()  # still payable


def test_review_names_a_broker_only_when_the_markup_names_one(
    pane: PaneSession, world: World
) -> None:
    user = "lea@example.com"
    f = pane.open(world.card([user], broker=""), world.token(user))
    heading(f, "Review the invoice")
    expect(f.locator("#review-merchant")).to_have_text(MERCHANT)
    expect(f.get_by_text("Billed through")).to_be_hidden()
    f = pane.open(world.card([user], broker="Relecloud Inc."), world.token(user))
    heading(f, "Review the invoice")
    expect(f.get_by_text("Billed through")).to_be_visible()
    expect(f.locator("#review-partner")).to_have_text("Relecloud Inc.")


def test_an_expired_card_shows_plainly_without_a_pay_button(
    pane: PaneSession, world: World
) -> None:
    user = "liam@example.com"
    f = pane.open(world.card([user], ttl=-60), world.token(user))
    heading(f, "Review the invoice")
    expect(f.locator("#review-notice")).to_contain_text("This payment request has expired")
    a11y.check(pane.pane_frame())
    expect(f.get_by_role("button", name="Continue")).to_have_count(0)
    result = pane.wait_message("inboxpay:result")
    assert (result["status"], result["reason"]) == ("unavailable", "expired")


def test_an_expired_token_is_renewed_through_the_parent(pane: PaneSession, world: World) -> None:
    user = "mia@example.com"
    world.save_card(user)
    expired_once: list[str] = []

    def expire_first(route: Route) -> None:
        if not expired_once:
            expired_once.append(route.request.url)
            body = '{"error": {"code": "invalid_token", "message": "token is invalid or expired"}}'
            route.fulfill(status=401, content_type="application/json", body=body)
        else:
            route.continue_()

    pane.page.route(f"{world.sidecar}/v1/payment-methods", expire_first)
    f = pane.open(world.card([user]), world.token(user))
    f.get_by_role("button", name="Continue").click()
    heading(f, "Choose how to pay")  # asked the parent, got a token, tried again
    assert expired_once and any(m["type"] == "inboxpay:token-needed" for m in pane.received())
