"""Payment markup hidden by parser differentials, through real Postfix (issue 10, item 2).

The attacker signs with their own domain and writes Xero in From; the invoice is hidden in
HTML or bytes that a naive scanner reads otherwise than a browser. Whatever the trick, the
delivered mail must hold no payment markup that a browser would build: each delivered
HTML part is decoded as a browser decodes it and parsed by a conformant HTML5 parser.
"""

from __future__ import annotations

import base64
import email
import json
from email.policy import compat32

import pytest
from selectolax.lexbor import LexborHTMLParser

from inboxpay import charsets

from . import checks, rawmime
from .harness import Mta
from .mail import Delivery
from .messages import CRLF, headers, html_part, message, multipart, text_part
from .scenarios import XERO_FROM
from .world import ATTACKER_MX, BOB

pytestmark = pytest.mark.e2e

EVIL = "EVIL-4242"
INVOICE = {
    "@context": "https://schema.org",
    "@type": "Invoice",
    "identifier": EVIL,
    "url": "https://in.xero.test/view/evil",
    "provider": {"@type": "Organization", "name": "Acme Supplies"},
    "totalPaymentDue": {"@type": "PriceSpecification", "price": "9999.00", "priceCurrency": "USD"},
}
LD = f'<script type="application/ld+json">{json.dumps(INVOICE)}</script>'


def page(middle: str) -> str:
    head = "<!DOCTYPE html><html><body><p>Your invoice is ready.</p>"
    return f"{head}\n{middle}\n<p>Thanks</p></body></html>\n"


def base64_html(data: bytes, charset: str) -> bytes:
    encoded = base64.encodebytes(data).replace(b"\n", CRLF)
    return (
        f'Content-Type: text/html; charset="{charset}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    ).encode("ascii") + encoded


def attacker_mail(html_entity: bytes) -> bytes:
    body = multipart("alternative", [text_part(b"Your invoice is ready.\r\n"), html_entity])
    return message(headers(XERO_FROM, [BOB], "Invoice INV-0042 from Acme Supplies"), body)


def browser_payment_markup(d: Delivery) -> list[str]:
    """What a browser would build from each delivered HTML part: ld+json scripts, items."""
    found: list[str] = []
    for part in rawmime.leaf_parts(d.raw):
        if part.content_type != "text/html":
            continue
        label = email.message_from_bytes(part.raw, policy=compat32).get_content_charset()
        text = charsets.decode(part.decoded(), label).text
        tree = LexborHTMLParser(text)
        found += [s.text() for s in tree.css("script") if "ld+json" in s.attributes.get("type", "")]
        found += [e.attributes.get("itemtype") or "" for e in tree.css("[itemscope]")]
        if EVIL in text:
            found.append(f"the text still names {EVIL}")
    return found


def assert_hidden_markup_gone(mta: Mta, sent: bytes) -> Delivery:
    d = mta.deliver_one(sent, ATTACKER_MX, "bounce@attacker.test", BOB)
    checks.assert_removed(d, "dkim_fail", "unaligned")
    assert browser_payment_markup(d) == [], f"{checks.where(d)} payment markup delivered"
    assert rawmime.other_parts(d.raw) == rawmime.other_parts(sent), "a non-HTML part changed"
    return d


@pytest.mark.parametrize(
    "hidden",
    [
        f"<!-- preheader --!>{LD}<!-- footer -->",
        f"<svg width='0' height='0'><style>{LD}</style></svg>",
        f"<math><title>{LD}</title></math>",
        f"<script><!--<script></script><!--</script>{LD}",
    ],
    ids=["bang-comment", "svg-style", "math-title", "script-double-escape"],
)
def test_markup_hidden_in_html(mta: Mta, hidden: str) -> None:
    html = page(hidden).encode("utf-8")
    sent = mta.dkim["attacker.test"].sign(attacker_mail(html_part(html)))
    assert_hidden_markup_gone(mta, sent)


def test_utf16_bom_in_a_part_labelled_utf8(mta: Mta) -> None:
    data = b"\xff\xfe" + page(LD).encode("utf-16-le")
    sent = mta.dkim["attacker.test"].sign(attacker_mail(base64_html(data, "utf-8")))
    assert_hidden_markup_gone(mta, sent)


def test_utf7_label_browsers_ignore(mta: Mta) -> None:
    # Python's UTF-7 turns "+json" into base64 garbage; a browser reads plain ASCII.
    sent = mta.dkim["attacker.test"].sign(
        attacker_mail(base64_html(page(LD).encode("ascii"), "utf-7"))
    )
    assert_hidden_markup_gone(mta, sent)


def test_foreign_content_past_the_scanners_depth(mta: Mta) -> None:
    # Only the conformant parser's second opinion (crosscheck) sees this one.
    html = page("<div>" * 1100 + f"<svg><style>{LD}</style></svg>" + "</div>" * 1100)
    sent = mta.dkim["attacker.test"].sign(attacker_mail(html_part(html.encode("ascii"))))
    assert_hidden_markup_gone(mta, sent)
