"""The payment markup real senders write (issue 9): the shapes Microsoft and Google
publish, with our own values (tests/data/invoices), their documented variants, and the
aliases schema.org's own context defines."""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from inboxpay.invoice.markup import KIND_SIGNED, find_payment_markup
from inboxpay.invoice.model import InvalidInvoice, Invoice
from inboxpay.invoice.parse import parse_invoice

DATA = Path(__file__).resolve().parent.parent / "data" / "invoices"


def fixture_text(name: str) -> str:
    return (DATA / name).read_text("utf-8")


def script(doc: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(doc)}</script>'


def parse_html(html: str) -> Invoice:
    [block] = find_payment_markup(html)
    return parse_invoice(block)


def refusal(html: str) -> str:
    [block] = find_payment_markup(html)  # recognised as a payment request, so removable
    with pytest.raises(InvalidInvoice) as caught:
        parse_invoice(block)
    return caught.value.detail


def action_request() -> dict[str, Any]:
    """The published ActionRequest of outlook_action_request.html, as a dict."""
    html = fixture_text("outlook_action_request.html")
    start = html.index('<script type="application/ld+json">') + 35
    return json.loads(html[start : html.index("</script>", start)])  # type: ignore[no-any-return]


# --- Microsoft ActionRequest, static sender --------------------------------------------


def test_the_published_action_request_shape() -> None:
    invoice = parse_html(fixture_text("outlook_action_request.html"))
    assert invoice == Invoice(
        kind="action",
        partner_name="Xero",
        merchant_name="Kauri Print Co.",
        merchant_account="KPC-20931",
        number="58213",
        amount_minor=41235,
        currency="NZD",
        amount="412.35",
        due=datetime.date(2026, 12, 20),
        url="https://in.xero.com/Kp58213Zx?utm_source=outlookpay",
    )


def test_several_payment_actions_that_agree_are_one_request() -> None:
    doc = action_request()
    doc["actions"].append({**doc["actions"][0], "displayId": "another-display"})
    assert parse_html(script(doc)).merchant_account == "KPC-20931"


def test_payment_actions_that_disagree_on_the_merchant_are_invalid() -> None:
    doc = action_request()
    doc["actions"].append({**doc["actions"][0], "merchantId": "EVIL-1"})
    assert refusal(script(doc)) == "payment actions disagree on merchantId"


def test_an_action_request_without_a_payment_action_is_removed_not_read() -> None:
    doc = action_request()
    doc["actions"] = [{"@type": "ViewAction", "url": "https://in.xero.com/x"}]
    # It names an Invoice in a shape no request has: removed, as markup nobody can read.
    assert refusal(script(doc)) == "payment markup could not be read"


def test_an_originator_that_is_not_text_is_invalid() -> None:
    doc = action_request()
    doc["originator"] = {"id": 7}
    assert refusal(script(doc)) == "originator is not text"


def test_an_entity_beside_and_inside_the_action_must_agree() -> None:
    doc = action_request()
    inner = copy.deepcopy(doc["entity"])
    inner["totalPaymentDue"]["price"] = "9999.00"
    doc["actions"][0]["entity"] = inner
    assert refusal(script(doc)) == "conflicting invoices in one ActionRequest"


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ("http://schema.org/PaymentComplete", "the invoice is already paid"),
        ("PaymentAutomaticallyApplied", "the invoice is paid automatically"),
    ],
)
def test_an_invoice_with_nothing_left_to_pay_gets_no_card(status: str, problem: str) -> None:
    doc = action_request()
    doc["entity"]["paymentStatus"] = status
    assert refusal(script(doc)) == problem


@pytest.mark.parametrize("status", ["PaymentDue", "https://schema.org/PaymentPastDue"])
def test_an_invoice_still_due_is_payable(status: str) -> None:
    doc = action_request()
    doc["entity"]["paymentStatus"] = status
    assert parse_html(script(doc)).amount == "412.35"


def test_a_signed_action_request_is_recognised_and_never_read_unverified() -> None:
    doc = {
        "@type": "SignedActionRequest",
        "@context": "http://schema.org/extensions",
        "signedActionRequest": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    }
    [block] = find_payment_markup(script(doc))
    assert block.kind == KIND_SIGNED
    with pytest.raises(InvalidInvoice):
        parse_invoice(block)


# --- Gmail / schema.org Invoice ----------------------------------------------------------


GMAIL = Invoice(
    kind="invoice",
    partner_name="",
    merchant_name="Riverside Water District",
    merchant_account="554-210-887",
    number="554-210-887-2026-12-18",
    amount_minor=8640,
    currency="USD",
    amount="86.40",
    due=datetime.date(2026, 12, 18),
    url="https://my.freshbooks.com/view/rwd-554210887",
)


def test_the_published_gmail_invoice_in_json_ld() -> None:
    # The card carries the total; the minimum payment beside it is not what is paid.
    assert parse_html(fixture_text("gmail_invoice_jsonld.html")) == GMAIL


def test_the_published_gmail_invoice_in_microdata() -> None:
    invoice = parse_html(fixture_text("gmail_invoice_microdata.html"))
    assert invoice == Invoice(**{**GMAIL.__dict__, "kind": "microdata"})


def gmail_doc() -> dict[str, Any]:
    html = fixture_text("gmail_invoice_jsonld.html")
    start = html.index('<script type="application/ld+json">') + 35
    return json.loads(html[start : html.index("</script>", start)])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "action",
    [
        {"@type": "ViewAction", "url": "https://my.freshbooks.com/v/1"},
        {"@type": "ViewAction", "target": "https://my.freshbooks.com/v/1"},
        {"@type": "PayAction", "target": "https://my.freshbooks.com/v/1"},
        {
            "@type": "ViewAction",
            "target": {"@type": "EntryPoint", "urlTemplate": "https://my.freshbooks.com/v/1"},
        },
    ],
)
def test_the_invoice_link_comes_from_any_documented_place(action: dict[str, Any]) -> None:
    doc = gmail_doc()
    doc["potentialAction"] = action
    assert parse_html(script(doc)).url == "https://my.freshbooks.com/v/1"


def test_an_invoice_without_any_link_is_invalid_and_says_so() -> None:
    doc = gmail_doc()
    del doc["potentialAction"]
    assert refusal(script(doc)) == "missing invoice url"


def test_a_minimum_payment_alone_is_not_an_amount_to_pay() -> None:
    doc = gmail_doc()
    del doc["totalPaymentDue"]
    assert refusal(script(doc)) == "missing amount"


# --- aliases that schema.org's context defines ------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**{k: v for k, v in d.items() if k != "@type"}, "type": "Invoice"},
        lambda d: {**d, "@context": "https://schema.org"},
        lambda d: {**d, "@context": {"@vocab": "https://schema.org/"}},
        lambda d: {**d, "@context": ["https://schema.org", {"inv": "https://schema.org/"}]},
        lambda d: {**d, "@context": {"s": "http://schema.org/"}, "@type": "s:Invoice"},
        lambda d: {
            **d,
            "@context": {"Bill": {"@id": "https://schema.org/Invoice"}},
            "@type": "Bill",
        },
        lambda d: {**d, "@type": "https://schema.org/Invoice"},
    ],
)
def test_schema_org_aliases_read_as_the_invoice(change: Any) -> None:
    assert parse_html(script(change(gmail_doc()))).amount == "86.40"


def test_id_is_an_alias_of_at_id_in_a_graph() -> None:
    doc = {
        "@context": "https://schema.org",
        "@graph": [
            {**{k: v for k, v in gmail_doc().items() if k != "provider"}, "provider": {"id": "#p"}},
            {"id": "#p", "type": "Organization", "name": "Riverside Water District"},
        ],
    }
    assert parse_html(script(doc)).merchant_name == "Riverside Water District"


def test_microdata_itemtype_over_https() -> None:
    html = fixture_text("gmail_invoice_microdata.html").replace(
        "http://schema.org", "https://schema.org"
    )
    assert parse_html(html).amount == "86.40"


@pytest.mark.parametrize(
    "doc",
    [
        {"@context": {"T": "http://schema.org/Invoice"}, "@type": "T", "x": 1},
        {"@context": {"s": "https://schema.org/"}, "type": "s:PaymentAction"},
        {"type": "SignedActionRequest", "signedActionRequest": "x.y.z"},
    ],
)
def test_whatever_could_be_read_as_a_request_is_recognised_for_removal(doc: object) -> None:
    # Not payable as written, but a JSON-LD processor reads a payment type: it is removed.
    assert len(find_payment_markup(script(doc))) == 1
