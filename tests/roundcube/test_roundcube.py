"""Issue 14: the Roundcube plugin, with real Roundcube, Dovecot, Postfix, milter and Chromium.

Through the real Postfix with the real milter, Bob's Maildir (which Dovecot serves to
Roundcube) receives: a genuine Xero invoice (carded), a spoofed one (its payment request
removed), an ordinary message, and a genuine invoice addressed to Carol only, which Carol
copied into Bob's mailbox (the file as Postfix delivered it to her, headers and all).

In headless Chromium, Bob logs in to Roundcube and:
- opens the carded invoice: the "Review and pay" bar; the pane in Roundcube's dialog; pays
  with the sandbox's 4242 card; the sandbox's ledger holds the one charge; reopened, the
  message says the invoice is already paid;
- opens the spoofed invoice: a quiet note that a payment request was taken out, and why;
- opens the ordinary message: nothing of InboxPay's;
- opens Carol's invoice: nothing payable (the sidecar says he is not a recipient).

Each step is saved in test-artifacts/roundcube/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser.chromium import PaneSession, finish, new_session
from browser.test_pane import PAYMENT_ID, fill_new_card, heading
from browser.webmail import Webmail
from browser.world import GOOD_CODE, VISA_OK
from e2e import checks, rawmime
from e2e.mail import Delivery
from e2e.messages import Invoice, invoice_mail, notice_mail
from e2e.scenarios import XERO_FROM, forged_card, from_xero, signed_xero_invoice
from e2e.session import milter_checked
from e2e.world import ACME_MX, ATTACKER_MX, BOB, CAROL
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect

from .world import PASSWORDS, PLUGIN, RoundcubeWorld

pytestmark = pytest.mark.e2e

GENUINE = Invoice(number="INV-RC-1", amount="1234.50", currency="USD")
SPOOFED = Invoice(number="INV-RC-SPOOF", amount="9999.00", currency="USD")
CAROLS = Invoice(number="INV-RC-CAROL", amount="88.00", currency="USD")
ORDINARY_SUBJECT = "Lunch on Thursday"
AMOUNT = "$1,234.50"
LOGIN_TIMEOUT_MS = 60_000
INBOX = "?_task=mail&_mbox=INBOX"


@dataclass(frozen=True)
class Inbox:
    genuine: Delivery
    spoofed: Delivery
    ordinary: Delivery
    carols: Delivery


@pytest.fixture(scope="module")
def inbox(rc: RoundcubeWorld) -> Inbox:
    mta = rc.mta
    with milter_checked(rc.postfix, rc.milter):
        genuine = from_xero(mta, signed_xero_invoice(mta, GENUINE, to=[BOB]), [BOB])[0]
        forged = f"{checks.CARD}: {forged_card()}"
        spoofed_mail = invoice_mail(SPOOFED, XERO_FROM, [BOB], extra_headers=[forged])
        spoofed = mta.deliver_one(
            mta.dkim["attacker.test"].sign(spoofed_mail),
            ATTACKER_MX,
            "bounce@attacker.test",
            BOB,
        )
        ordinary = mta.deliver_one(
            notice_mail("Ann <ann@acme.test>", to=[BOB], subject=ORDINARY_SUBJECT),
            ACME_MX,
            "ann@acme.test",
            BOB,
        )
        carols = from_xero(mta, signed_xero_invoice(mta, CAROLS, to=[CAROL]), [CAROL])[0]
    claims = checks.card_claims(genuine, mta.card_keys.verifier)
    assert claims["invoice"]["number"] == GENUINE.number, claims
    checks.card_claims(carols, mta.card_keys.verifier)
    checks.assert_removed(spoofed, "dkim_fail", "unaligned")
    assert rawmime.values(ordinary.raw, checks.CARD) == []
    # Carol copies her invoice into Bob's mailbox: the very file Postfix delivered.
    copy = rc.postfix.maildir(BOB) / "new" / f"{carols.queue_id}.carols-copy"
    copy.write_bytes(carols.raw)
    shutil.chown(copy, *owner(rc.postfix.maildir(BOB)))
    return Inbox(genuine, spoofed, ordinary, carols)


def owner(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


@pytest.fixture(scope="module")
def session(browser: Browser, rc: RoundcubeWorld, artifacts: Path) -> Iterator[PaneSession]:
    """One browser context for Bob, logged in to Roundcube; checked for leaks at the end."""
    # The leak checks of the pane sessions; their own test webmail is not used here.
    webmail = Webmail(rc.world.webmail_port, rc.world.stranger_port)
    s = new_session(browser, rc.world, webmail, artifacts, width=1280, height=900)
    s.secrets |= {VISA_OK, GOOD_CODE}
    page = s.page
    page.goto(rc.roundcube.url)
    page.locator("#rcmloginuser").fill(BOB)
    page.locator("#rcmloginpwd").fill(PASSWORDS[BOB])
    shot(page, artifacts, "01-login")
    page.locator("#rcmloginsubmit").click()
    # The first page after login loads Roundcube's whole UI from one `php -S` process,
    # which serves one request at a time: under load that takes longer than a step.
    expect(page.locator("#messagelist")).to_be_visible(timeout=LOGIN_TIMEOUT_MS)
    yield s
    finish([s])


def open_message(page: Page, subject: str) -> FrameLocator:
    """Load the inbox afresh, click the message; its preview frame."""
    page.goto(urllib.parse.urljoin(page.url, INBOX))
    row = page.locator("#messagelist tbody tr").filter(has_text=subject)
    expect(row).to_have_count(1)
    row.click()
    frame = page.frame_locator("#messagecontframe")
    expect(frame.locator("#messagebody, #message-content").first).to_be_visible()
    return frame


def shot(page: Page, artifacts: Path, name: str) -> None:
    """The whole window as the user sees it, with Elastic's fades finished."""
    expect(page.locator(".iframe-loader")).to_have_count(0)
    page.screenshot(path=str(artifacts / f"{name}.png"), animations="disabled")


def objects(frame: FrameLocator) -> Locator:
    return frame.locator("#message-objects")


def test_every_plugin_file_passes_php_lint() -> None:
    files = sorted(
        p for p in PLUGIN.rglob("*") if p.suffix in (".php", ".inc") or p.name.endswith(".dist")
    )
    assert len(files) >= 3, files

    if shutil.which("php") is None:
        pytest.fail("php is missing: apt-get install php-cli", pytrace=False)
    for path in files:
        run = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert run.returncode == 0, f"{path}: {run.stdout}{run.stderr}"


def test_bob_pays_the_carded_invoice(
    rc: RoundcubeWorld, inbox: Inbox, session: PaneSession, artifacts: Path
) -> None:
    page = session.page
    assert rc.world.ledger() == []
    message = open_message(page, GENUINE.number)
    bar = message.locator("#inboxpay-bar")
    expect(bar).to_be_visible()
    expect(bar).to_contain_text(f"Invoice {GENUINE.number} from {GENUINE.merchant}: {AMOUNT}")
    button = bar.get_by_role("button", name="Review and pay")
    expect(button).to_be_visible()
    expect(message.locator(".inboxpay-bar, .inboxpay-note")).to_have_count(1)
    shot(page, artifacts, "02-pay-bar")

    button.click()
    dialog = page.locator(".ui-dialog.inboxpay-dialog")
    expect(dialog).to_be_visible()
    pane = page.frame_locator("#inboxpay-pane")
    heading(pane, "Review the invoice")
    expect(pane.locator("#review-amount")).to_have_text(AMOUNT)
    expect(pane.locator("#review-number")).to_have_text(GENUINE.number)
    expect(pane.locator("#review-trust")).to_contain_text("Signed by post.xero.test (DKIM: pass)")
    shot(page, artifacts, "03-pane-review")

    pane.get_by_role("button", name="Continue").click()
    heading(pane, "Add a card")
    fill_new_card(pane, VISA_OK)
    pane.get_by_role("button", name="Save and continue").click()
    heading(pane, "Confirm and pay")
    pane.get_by_role("textbox", name="Security code").fill(GOOD_CODE)
    shot(page, artifacts, "04-pane-security-code")
    pane.get_by_role("button", name=f"Pay {AMOUNT}").click()
    heading(pane, "Payment complete")
    expect(pane.locator("#receipt-amount")).to_have_text(AMOUNT)
    expect(pane.locator("#receipt-card")).to_have_text("Visa ending 4242")
    expect(pane.locator("#receipt-id")).to_have_text(PAYMENT_ID)
    shot(page, artifacts, "05-pane-receipt")

    # The processor's own ledger: exactly one charge, of this amount.
    charges = rc.world.ledger()
    assert [(c["amount_minor"], c["currency"]) for c in charges] == [(123450, "USD")], charges

    # Done closes Roundcube's dialog (inboxpay:close).
    pane.get_by_role("button", name="Done").click()
    expect(dialog).to_have_count(0)

    # Reopened: already paid, nothing to press.
    message = open_message(page, GENUINE.number)
    expect(message.locator(".inboxpay-paid")).to_contain_text("already paid")
    expect(message.get_by_role("button", name="Review and pay")).to_have_count(0)
    shot(page, artifacts, "06-already-paid")
    assert len(rc.world.ledger()) == 1


def test_a_removed_request_shows_a_quiet_note(
    inbox: Inbox, session: PaneSession, artifacts: Path
) -> None:
    message = open_message(session.page, SPOOFED.number)
    note = message.locator(".inboxpay-removed")
    expect(note).to_contain_text("InboxPay took a payment request out of this message")
    expect(note).to_have_attribute("data-reason", re.compile("^(dkim_fail|unaligned)$"))
    expect(message.get_by_role("button", name="Review and pay")).to_have_count(0)
    shot(session.page, artifacts, "07-removed-note")


def test_an_ordinary_message_shows_nothing(
    inbox: Inbox, session: PaneSession, artifacts: Path
) -> None:
    message = open_message(session.page, ORDINARY_SUBJECT)
    expect(message.locator("#messagebody")).to_contain_text("Nothing needs your attention")
    expect(objects(message).locator("[class*=inboxpay]")).to_have_count(0)
    shot(session.page, artifacts, "08-ordinary")


def test_a_card_for_another_user_is_not_payable(
    rc: RoundcubeWorld, inbox: Inbox, session: PaneSession, artifacts: Path
) -> None:
    # The sidecar's own answer for Bob: not a recipient.
    (card,) = rawmime.values(inbox.carols.raw, checks.CARD)
    status, body = rc.world.api(
        "POST", "/v1/cards/verify", rc.world.token(BOB), {"card": re.sub(r"\s+", "", card)}
    )
    assert (status, body["error"]["code"]) == (403, "not_a_recipient"), body

    message = open_message(session.page, CAROLS.number)
    expect(message.locator("#messagebody")).to_contain_text(CAROLS.number)
    expect(objects(message).locator("[class*=inboxpay]")).to_have_count(0)
    expect(message.get_by_role("button", name="Review and pay")).to_have_count(0)
    shot(session.page, artifacts, "09-not-addressed-to-you")
