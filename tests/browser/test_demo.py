"""The development demo inbox: a Maildir listed newest first, cards verified on the
server, and the pane opened in an iframe for the one that verifies."""

from __future__ import annotations

import base64
import email.utils
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from .conftest import PaneSession
from .world import DEMO_USER, World


def tampered(card: str) -> str:
    """The same card with a bigger amount: the signature no longer matches."""
    header, payload, signature = re.sub(r"\s+", "", card).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["invoice"]["amount"] = "99999.00"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def deliver(maildir: Path, subject: str, card: str | None, age: int, folder: str = "new") -> None:
    name = f"{int(time.time())}.{uuid.uuid4().hex}.localhost" + (":2,S" if folder == "cur" else "")
    lines = [
        "From: Xero <billing@post.xero.com>",
        f"To: {DEMO_USER}",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(time.time() - age)}",
        f"Message-ID: <{uuid.uuid4().hex}@post.xero.com>",
    ]
    if card is not None:
        lines.append(f"InboxPay-Card: {card}")  # folded by the milter, "\n\t" and all
    path = maildir / folder / name
    path.write_text("\n".join(lines) + "\n\nHello.\n")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_demo_inbox_opens_the_pane_for_a_verified_card(
    make_pane: Callable[..., PaneSession], world: World
) -> None:
    deliver(world.maildir, "Lunch on Friday?", None, age=300)
    card = world.card([DEMO_USER], amount="250.00", number="INV-DEMO-1")
    deliver(world.maildir, "Invoice INV-DEMO-1 from Wide World Importers", card, age=200)
    deliver(world.maildir, "Invoice (tampered)", tampered(card), age=100, folder="cur")

    pane = make_pane(width=1280, height=900)
    page = pane.page
    page.goto(f"{world.sidecar}/demo/")
    expect(page.get_by_role("note")).to_contain_text("Development only")
    subjects = page.locator(".subject").all_inner_texts()
    assert subjects == [
        "Invoice (tampered)",
        "Invoice INV-DEMO-1 from Wide World Importers",
        "Lunch on Friday?",
    ]
    notes = page.locator(".note").all_inner_texts()
    assert notes == ["card does not verify (bad_signature)", "no InboxPay card"]
    pay = page.get_by_role("button", name="Review and pay")
    expect(pay).to_have_count(1)
    pay.click()
    f = pane.frame
    expect(f.get_by_role("heading", name="Review the invoice")).to_be_visible()
    expect(f.locator("#review-amount")).to_have_text("$250.00")
    expect(f.locator("#review-number")).to_have_text("INV-DEMO-1")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(pane.artifacts / "11-demo-inbox.png"), full_page=True)
