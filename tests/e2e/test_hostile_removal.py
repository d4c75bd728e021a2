"""Hostile mail through real Postfix: removal never leaves or creates a payment request,
and any failure of the milter ends in removal (issue 10 items 1, 3, 4 and 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from inboxpay.invoice import crosscheck
from inboxpay.invoice.markup import find_payment_markup
from inboxpay.invoice.removal import NOTICE

from . import checks, rawmime
from .dnsserver import DnsServer
from .harness import Instance, Mta, private_instance
from .mail import Delivery
from .messages import Invoice, crlf, entity, headers, html_part, message, multipart, text_part
from .postfix import milter_warnings
from .scenarios import XERO_BOUNCE, XERO_FROM, from_xero
from .world import ATTACKER_MX, AUTHSERV_ID, BOB, XERO_MX, DkimKey

pytestmark = pytest.mark.e2e

ATTACKER_FROM = "Billing <billing@attacker.test>"
DECOY = '<script type="application/ld+json">{"@type":"Invoice"}</script>'
FORGED_AR = f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d=post.xero.test"


def html_mail(sender: str, html: str, extra: tuple[str, ...] = ()) -> bytes:
    page = crlf(
        f"<html><body>\n<p>Your invoice</p>\n{html}\n<p>Thanks</p>\n</body></html>\n".encode()
    )
    body = multipart("alternative", [text_part(b"Your invoice\r\n"), html_part(page)])
    return message(headers(sender, [BOB], "Invoice INV-666", extra), body)


def assert_no_request_anywhere(d: Delivery) -> None:
    """Neither our scanner nor a conformant HTML5 parser finds markup in what arrived."""
    for html in rawmime.html_parts(d.raw):
        text = html.decode("utf-8")
        assert find_payment_markup(text) == [], f"{checks.where(d)} markup left: {text[:300]}"
        assert not crosscheck.disagrees(text, []), f"{checks.where(d)} a browser sees markup"
        assert "9999.00" not in text, checks.where(d)


def test_splicing_a_request_out_of_a_decoy_removal(mta: Mta) -> None:
    evil = Invoice(amount="9999.00", url="https://in.xero.test/view/evil")
    sent = mta.dkim["attacker.test"].sign(html_mail(ATTACKER_FROM, "<" + DECOY + evil.script()[1:]))
    d = mta.deliver_one(sent, ATTACKER_MX, "bounce@attacker.test", BOB)
    checks.assert_removed(d, "not_partner")
    assert_no_request_anywhere(d)
    [html] = rawmime.html_parts(d.raw)
    assert b"<p>Your invoice</p>" in html and b"<p>Thanks</p>" in html  # only markup went


def nested_part(depth: int, html: bytes) -> bytes:
    part = html_part(crlf(html))
    for _ in range(depth):
        part = entity(multipart("mixed", [part]))
    return part


def test_a_request_past_the_mime_limits_is_neutralised_without_a_card(mta: Mta) -> None:
    # A genuine invoice, signed by the partner, with one more request 12 levels down.
    genuine = f"<html><head>{Invoice().script()}</head><body><p>INV-0042</p></body></html>"
    evil = Invoice(amount="9999.00").script().encode()
    parts = [html_part(crlf(genuine.encode())), nested_part(12, evil)]
    head = headers(XERO_FROM, [BOB], "Invoice INV-0042")
    sent = mta.dkim["post.xero.test"].sign(message(head, multipart("mixed", parts)))
    d = from_xero(mta, sent)[0]
    checks.assert_no_card(d)
    assert checks.verdict(d) == ("skipped", {"reason": "too_complex"}), checks.where(d)
    top, deep = rawmime.html_parts(d.raw)
    assert b"<p>INV-0042</p>" in top and NOTICE.encode() in deep, checks.where(d)
    assert_no_request_anywhere(d)


def test_the_id_expansion_bomb_is_removed_at_once(mta: Mta) -> None:
    graph = [
        {"@id": f"n{i}", "@type": "Invoice", "x": [{"@id": f"n{i + 1}"}] * 50} for i in range(5)
    ]
    doc = json.dumps({"@context": "http://schema.org", "@graph": graph}, separators=(",", ":"))
    bomb = f'<script type="application/ld+json">{doc}</script>'
    sent = mta.dkim["attacker.test"].sign(html_mail(ATTACKER_FROM, bomb))
    log_start = mta.postfix.log_size()
    d = mta.deliver_one(sent, ATTACKER_MX, "bounce@attacker.test", BOB)
    assert milter_warnings(mta.postfix.log_since(log_start)) == [], checks.where(d)
    checks.assert_removed(d, "not_partner")
    assert b"@graph" not in d.raw, checks.where(d)


# --- the fail-safe path, in a milter with a tiny CPU deadline ------------------------------


@pytest.fixture(scope="module")
def hurried(
    e2e_dir: Path, dns_server: DnsServer, dkim_keys: dict[str, DkimKey]
) -> Iterator[Instance]:
    """A milter that gives each message 10 ms of CPU."""
    with private_instance(
        e2e_dir / "hurried", dns_server.port, dkim_keys, milter={"cpu_deadline": 0.01}
    ) as instance:
        yield instance


def test_a_message_past_the_cpu_deadline_ends_in_removal(hurried: Instance) -> None:
    # Ninety HTML parts, each with a request and 20 kB of text around it.
    page = "<p>" + "lorem ipsum " * 1700 + "</p>" + Invoice(amount="9999.00").script()
    parts = [html_part(crlf(page.encode())) for _ in range(90)]
    head = headers(XERO_FROM, [BOB], "Ninety invoices", [FORGED_AR])
    sent = hurried.mta.dkim["post.xero.test"].sign(message(head, multipart("mixed", parts)))
    log_start = hurried.mta.postfix.log_size()
    d = hurried.mta.deliver_one(sent, XERO_MX, XERO_BOUNCE, BOB)
    assert milter_warnings(hurried.mta.postfix.log_since(log_start)) == [], checks.where(d)
    hurried.milter.check_alive()
    checks.assert_removed(d, "internal_error")
    ours = [v for v in rawmime.values(d.raw, checks.AR) if checks.is_ours(v)]
    assert ours == [], f"{checks.where(d)} the forged {checks.AR} survived: {ours}"
    assert b"application/ld+json" not in d.raw, checks.where(d)
    html = rawmime.html_parts(d.raw)
    assert len(html) == 90 and all(NOTICE.encode() in h for h in html), checks.where(d)
