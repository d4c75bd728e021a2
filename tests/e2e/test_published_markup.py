"""The markup shapes Microsoft and Google publish (issue 9), through real Postfix: from a
registered partner with passing authentication they get a card; from anyone else they
are removed. Fixtures: tests/data/invoices, with the invoice links moved to the test
partner's host."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from . import checks, rawmime
from .harness import Mta
from .messages import crlf, headers, html_part, message, multipart, text_part
from .scenarios import XERO_FROM, from_xero
from .world import ATTACKER_MX, BOB

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parent.parent / "data" / "invoices"
HOSTS = ("https://in.xero.com/", "https://my.freshbooks.com/")


def fixture(name: str) -> str:
    html = (DATA / name).read_text("utf-8")
    for host in HOSTS:
        html = html.replace(host, "https://in.xero.test/")
    return html


def jsonld(name: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
    """The fixture's JSON-LD document, changed, in a page of its own."""
    html = fixture(name)
    start = html.index('<script type="application/ld+json">') + 35
    doc = change(json.loads(html[start : html.index("</script>", start)]))
    return (
        f'<html><head><script type="application/ld+json">{json.dumps(doc)}</script></head></html>'
    )


def mail(sender: str, html: str) -> bytes:
    parts = [text_part(b"Your invoice\r\n"), html_part(crlf(html.encode()))]
    return message(headers(sender, [BOB], "Your invoice"), multipart("alternative", parts))


def without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {k: v for k, v in d.items() if k != key}


def link(action: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {**d, "potentialAction": action}


PAGES = {
    "outlook action request": lambda: fixture("outlook_action_request.html"),
    "gmail invoice json-ld": lambda: fixture("gmail_invoice_jsonld.html"),
    "gmail invoice microdata": lambda: fixture("gmail_invoice_microdata.html"),
    "gmail invoice microdata over https": lambda: fixture("gmail_invoice_microdata.html").replace(
        "http://schema.org", "https://schema.org"
    ),
    "link from a PayAction target": lambda: jsonld(
        "gmail_invoice_jsonld.html",
        link({"@type": "PayAction", "target": "https://in.xero.test/pay/1"}),
    ),
    "link from an EntryPoint": lambda: jsonld(
        "gmail_invoice_jsonld.html",
        link(
            {
                "@type": "ViewAction",
                "target": {"@type": "EntryPoint", "urlTemplate": "https://in.xero.test/v/1"},
            }
        ),
    ),
    "type and id aliases": lambda: jsonld(
        "gmail_invoice_jsonld.html", lambda d: {**without("@type")(d), "type": "Invoice"}
    ),
    "context as an array": lambda: jsonld(
        "gmail_invoice_jsonld.html",
        lambda d: {**d, "@context": ["https://schema.org", {"@vocab": "https://schema.org/"}]},
    ),
}


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_published_shape_from_a_partner_gets_a_card(mta: Mta, page: Callable[[], str]) -> None:
    sent = mta.dkim["post.xero.test"].sign(mail(XERO_FROM, page()))
    d = from_xero(mta, sent)[0]
    claims = checks.card_claims(d, mta.card_keys.verifier)
    assert claims["invoice"]["url"].startswith("https://in.xero.test/"), claims
    assert claims["invoice"]["amount"] in ("412.35", "86.40"), claims
    checks.assert_body_unchanged(sent, d)


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_a_published_shape_from_anyone_else_is_removed(mta: Mta, page: Callable[[], str]) -> None:
    sent = mta.dkim["attacker.test"].sign(mail("Billing <billing@attacker.test>", page()))
    d = mta.deliver_one(sent, ATTACKER_MX, "bounce@attacker.test", BOB)
    checks.assert_removed(d, "not_partner")
    for html in rawmime.html_parts(d.raw):
        assert b"application/ld+json" not in html and b"itemscope" not in html, checks.where(d)


def test_an_invoice_without_a_link_is_removed_as_invalid(mta: Mta) -> None:
    page = jsonld("gmail_invoice_jsonld.html", without("potentialAction"))
    sent = mta.dkim["post.xero.test"].sign(mail(XERO_FROM, page))
    checks.assert_removed(from_xero(mta, sent)[0], "invalid_invoice")


def test_a_signed_request_from_a_partner_without_keys_is_removed(mta: Mta) -> None:
    # The partner's own key signed it, but the MX was given no key to check it with.
    key = RSAKey.generate_key(2048, private=True)
    html = fixture("outlook_action_request.html")
    start = html.index('<script type="application/ld+json">') + 35
    payload = {
        "originator": "7f3c1a52-90d4-4c1e-b0e7-6a2d5e8f1c33",
        "actionRequestSerialized": html[start : html.index("</script>", start)],
        "iat": str(int(time.time())),
        "sender": "billing@post.xero.test",
        "sub": "customer-1",
    }
    token = jws.serialize_compact(
        {"typ": "JWT", "alg": "RS256"}, json.dumps(payload).encode(), key, algorithms=["RS256"]
    )
    request = {"@type": "SignedActionRequest", "signedActionRequest": token}
    page = f'<html><head><script type="application/ld+json">{json.dumps(request)}</script></head>'
    sent = mta.dkim["post.xero.test"].sign(mail(XERO_FROM, page + "</html>"))
    d = from_xero(mta, sent)[0]
    checks.assert_removed(d, "unsigned_partner")
    assert b"SignedActionRequest" not in b"".join(rawmime.html_parts(d.raw)), checks.where(d)
