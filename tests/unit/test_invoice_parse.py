"""Reading payment markup into a checked Invoice: variants that parse, and what must not."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from inboxpay.errors import InboxPayError
from inboxpay.invoice.markup import MarkupBlock, find_payment_markup
from inboxpay.invoice.model import InvalidInvoice, Invoice
from inboxpay.invoice.parse import parse_invoice

DATA = Path(__file__).parent.parent / "data" / "invoices"


def invoice(**changes: Any) -> dict[str, Any]:
    """A valid Gmail-style Invoice; a change of None drops the key."""
    base: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Invoice",
        "identifier": "INV-1",
        "accountId": "ACC-9",
        "provider": {"@type": "Organization", "name": "Acme Hosting"},
        "totalPaymentDue": {
            "@type": "PriceSpecification",
            "price": "70.00",
            "priceCurrency": "USD",
        },
        "paymentDueDate": "2026-12-01",
        "url": "https://pay.acme.example/INV-1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def block_of(source: str) -> MarkupBlock:
    """The one block found in a JSON-LD script with ``source`` (raw JSON text)."""
    [block] = find_payment_markup(f'<script type="application/ld+json">{source}</script>')
    return block


def parse(obj: object, **kwargs: Decimal) -> Invoice:
    return parse_invoice(block_of(json.dumps(obj)), **kwargs)


def invalid(obj: object, **kwargs: Decimal) -> str:
    with pytest.raises(InvalidInvoice) as caught:
        parse(obj, **kwargs)
    assert isinstance(caught.value, InboxPayError)
    assert str(caught.value) == caught.value.detail
    return caught.value.detail


# --- fixtures ----------------------------------------------------------------------------


def from_fixture(name: str) -> Invoice:
    [block] = find_payment_markup((DATA / f"{name}.html").read_text("utf-8"))
    return parse_invoice(block)


def test_xero_action_request() -> None:
    assert from_fixture("xero_action") == Invoice(
        kind="action",
        partner_name="Xero",
        merchant_name="Harbour Web Studio Ltd",
        merchant_account="HWS-7731",
        number="INV-0042",
        amount_minor=125000,
        currency="NZD",
        amount="1250.00",
        due=datetime.date(2026, 12, 1),
        url="https://in.xero.com/Ab12Cd34Ef56?utm_source=invoice&currency=NZD",
    )


def test_freshbooks_invoice() -> None:
    assert from_fixture("freshbooks_invoice") == Invoice(
        kind="invoice",
        partner_name="FreshBooks",
        merchant_name="Maple & Birch Bookkeeping",
        merchant_account="AC-55-1024",
        number="0000318",
        amount_minor=123450,
        currency="USD",
        amount="1234.50",
        due=datetime.date(2026, 11, 15),
        url="https://my.freshbooks.com/#/link/pay/9f8e7d6c",
    )


def test_microdata_invoice() -> None:
    assert from_fixture("microdata_invoice") == Invoice(
        kind="microdata",
        partner_name="Stripe",
        merchant_name="Northwind Utilities",
        merchant_account="ACCT-88412",
        number="NW-2026-0117",
        amount_minor=8640,
        currency="EUR",
        amount="86.40",
        due=datetime.date(2026, 10, 31),
        url="https://billing.northwind.example/pay?inv=NW-2026-0117&lang=en",
    )


def test_the_email_fixture_parses_like_its_html() -> None:
    from inboxpay.invoice.mime import html_parts
    from inboxpay.message import RawMessage

    msg = RawMessage.from_bytes((DATA / "xero_invoice.eml").read_bytes())
    [part] = html_parts(msg.headers, msg.body)
    [block] = find_payment_markup(part.text)
    assert parse_invoice(block) == from_fixture("xero_action")


# --- forms -------------------------------------------------------------------------------


def test_action_request_and_payment_action() -> None:
    action = {"@type": "PaymentAction", "merchantId": "M-77", "entity": invoice()}
    request = {"@context": "http://schema.org", "@type": "ActionRequest", "action": action}
    for obj in (request, {**action, "@context": "https://schema.org"}):
        result = parse(obj)
        assert (result.kind, result.merchant_account, result.amount) == ("action", "M-77", "70.00")
    pay = {"@type": "PayAction", "object": invoice(accountId=None)}
    assert parse(pay).merchant_account == ""


def test_action_request_with_several_actions_picks_the_payment() -> None:
    request = {
        "@type": "ActionRequest",
        "action": [{"@type": "ViewAction"}, {"@type": "PaymentAction", "entity": invoice()}],
    }
    assert parse(request).number == "INV-1"


def test_bare_invoice_fields() -> None:
    result = parse(invoice())
    assert result == Invoice(
        kind="invoice",
        partner_name="",
        merchant_name="Acme Hosting",
        merchant_account="ACC-9",
        number="INV-1",
        amount_minor=7000,
        currency="USD",
        amount="70.00",
        due=datetime.date(2026, 12, 1),
        url="https://pay.acme.example/INV-1",
    )


@pytest.mark.parametrize("key", ["paymentDueDate", "paymentDue"])
@pytest.mark.parametrize(
    ("value", "due"),
    [
        ("2026-12-01", datetime.date(2026, 12, 1)),
        ("2026-12-01T00:00:00Z", datetime.date(2026, 12, 1)),
        ("2026-12-01T23:30:00-11:00", datetime.date(2026, 12, 1)),  # its own date, not UTC's
        ("2026-12-01T00:30:00+1400", datetime.date(2026, 12, 1)),
        ("2026-12-01T12:00", datetime.date(2026, 12, 1)),
        ("2026-12-01 12:00:00.123456789", datetime.date(2026, 12, 1)),
        ("  2000-01-01 ", datetime.date(2000, 1, 1)),
        ("2100-12-31", datetime.date(2100, 12, 31)),
        ("2028-02-29", datetime.date(2028, 2, 29)),
    ],
)
def test_due_dates(key: str, value: str, due: datetime.date) -> None:
    obj = invoice(paymentDueDate=None)
    obj[key] = value
    assert parse(obj).due == due


@pytest.mark.parametrize(
    ("price", "currency", "minor", "code"),
    [
        ('"$70.00"', None, 7000, "USD"),
        ('"€70.00"', None, 7000, "EUR"),
        ('"£70"', None, 7000, "GBP"),
        ('"70.00 EUR"', None, 7000, "EUR"),
        ('"CHF 1,000.50"', None, 100050, "CHF"),
        ('"$ 1,234.50"', None, 123450, "USD"),
        ('"+$70.00"', None, 7000, "USD"),
        ('"$70.00"', '"CAD"', 7000, "CAD"),  # priceCurrency wins
        ('"¥7000"', '"JPY"', 7000, "JPY"),
        ('"R$ 70.00"', '"BRL"', 7000, "BRL"),
        ('"1,234.50"', '"USD"', 123450, "USD"),
        ('"1,234,567.5"', '"USD"', 123456750, "USD"),
        ('" 70 "', '"USD"', 7000, "USD"),
        ("70.5", '"USD"', 7050, "USD"),
        ("70", '"USD"', 7000, "USD"),
        ("7000", '"JPY"', 7000, "JPY"),
        ('"1.500"', '"BHD"', 1500, "BHD"),
        ('"1.2345"', '"CLF"', 12345, "CLF"),
        ('"70.00"', '" usd "', 7000, "USD"),
    ],
)
def test_amounts(price: str, currency: str | None, minor: int, code: str) -> None:
    spec = f'"price": {price}' + (f', "priceCurrency": {currency}' if currency else "")
    source = json.dumps(invoice(totalPaymentDue=None)).replace(
        '"@type": "Invoice"', '"@type": "Invoice", "totalPaymentDue": {' + spec + "}"
    )
    result = parse_invoice(block_of(source), max_amount=Decimal(10**9))  # syntax, not limits
    assert (result.amount_minor, result.currency) == (minor, code)


@pytest.mark.parametrize(
    "fields",
    [
        {"totalPaymentDue": {"@type": "MonetaryAmount", "value": "70.00", "currency": "USD"}},
        {"totalPaymentDue": "$70.00"},
        {"totalPaymentDue": "70.00", "priceCurrency": "USD"},
        {"totalPaymentDue": None, "totalPrice": "70.00", "priceCurrency": "USD"},
        {"totalPaymentDue": None, "price": "$70.00"},
    ],
)
def test_amount_locations_on_the_invoice(fields: dict[str, Any]) -> None:
    assert parse(invoice(**fields)).amount == "70.00"


def test_amount_on_the_action() -> None:
    action = {
        "@type": "PaymentAction",
        "price": "70.00",
        "priceCurrency": "EUR",
        "entity": invoice(totalPaymentDue=None),
    }
    assert (parse(action).amount, parse(action).currency) == ("70.00", "EUR")


@pytest.mark.parametrize(
    ("fields", "number"),
    [
        ({"identifier": "  INV-7  "}, "INV-7"),
        ({"identifier": 1234}, "1234"),
        (
            {"identifier": {"@type": "PropertyValue", "propertyID": "invoice", "value": "PV-1"}},
            "PV-1",
        ),
        ({"identifier": None, "confirmationNumber": "C-5"}, "C-5"),
        ({"identifier": None}, "ACC-9-2026-12-01"),
        ({"identifier": None, "accountId": None}, "2026-12-01"),
    ],
)
def test_numbers(fields: dict[str, Any], number: str) -> None:
    assert parse(invoice(**fields)).number == number


def test_number_derived_from_merchant_id_without_account() -> None:
    action = {
        "@type": "PaymentAction",
        "merchantId": "M-1",
        "entity": invoice(identifier=None, accountId=None),
    }
    assert parse(action).number == "M-1-2026-12-01"


@pytest.mark.parametrize(
    ("fields", "merchant", "partner"),
    [
        ({"provider": "  Acme Ltd "}, "Acme Ltd", ""),
        (
            {"provider": None, "seller": {"@type": "Organization", "name": "Seller Co"}},
            "Seller Co",
            "",
        ),
        ({"provider": None, "seller": "Seller Co"}, "Seller Co", ""),
        ({"broker": {"@type": "Organization", "name": "Xero"}}, "Acme Hosting", "Xero"),
        ({"broker": "FreshBooks"}, "Acme Hosting", "FreshBooks"),
        ({"provider": {"@type": "Person", "name": "Jo Smith"}}, "Jo Smith", ""),
    ],
)
def test_names(fields: dict[str, Any], merchant: str, partner: str) -> None:
    result = parse(invoice(**fields))
    assert (result.merchant_name, result.partner_name) == (merchant, partner)


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({}, "https://pay.acme.example/INV-1"),
        ({"potentialAction": {"@type": "PayAction", "url": "https://a.example/pay"}}, None),
        ({"potentialAction": {"@type": "PayAction", "target": "https://a.example/t"}}, None),
        (
            {
                "potentialAction": [
                    {"@type": "ViewAction", "target": "https://v.example"},
                    {
                        "@type": "PayAction",
                        "target": {"@type": "EntryPoint", "urlTemplate": "https://a.example/e"},
                    },
                ]
            },
            None,
        ),
    ],
)
def test_url_on_invoice_or_action(extra: dict[str, Any], url: str | None) -> None:
    if url is not None:
        assert parse(invoice(**extra)).url == url
        return
    result = parse(invoice(url=None, **extra))
    assert result.url.startswith("https://a.example/")
    assert parse(invoice(**extra)).url == "https://pay.acme.example/INV-1"  # the invoice's wins


def test_url_target_on_payment_action() -> None:
    action = {
        "@type": "PaymentAction",
        "target": [{"@type": "EntryPoint", "urlTemplate": "https://a.example/x"}],
        "entity": invoice(url=None),
    }
    assert parse(action).url == "https://a.example/x"


# --- invalid -----------------------------------------------------------------------------


def test_empty_data() -> None:
    with pytest.raises(InvalidInvoice, match="could not be read"):
        parse_invoice(MarkupBlock(0, 10, "invoice", {}))


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ('"0.00"', "not positive"),
        ("0", "not positive"),
        ('"-5.00"', "negative"),
        ('"$-5.00"', "negative"),
        ('"-$5.00"', "negative"),
        ('"\u22125.00"', "negative"),
        ("-5", "not positive"),
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ('"NaN"', "not a number"),
        ('"Infinity"', "not a number"),
        ('"70,00"', "not a number"),  # comma decimals are not read
        ('"1.234,50"', "not a number"),
        ('"1,23.45"', "not a number"),
        ('"70."', "not a number"),
        ('"7e1"', "not a number"),
        ('"seventy"', "not a number"),
        ('""', "missing amount"),
        ("true", "not a number"),
        ("[1, 2]", "conflicting values"),
        ('{"x": 1}', "not a number"),
        ('"' + "1" * 70 + '"', "not a number"),
        ('"70.001"', "more than 2 decimal places"),
        ("70.001", "more than 2 decimal places"),
        ('"70.000"', "more than 2 decimal places"),  # written precision, even if exact
        ('"100000000.01"', "above the limit"),
        ("1E+30", "above the limit"),
        ("1E+999999", "too large"),
    ],
)
def test_invalid_amounts(source: str, detail: str) -> None:
    obj = invoice(totalPaymentDue={"price": "__P__", "priceCurrency": "USD"})
    block = block_of(json.dumps(obj).replace('"__P__"', source))
    with pytest.raises(InvalidInvoice, match=detail):
        parse_invoice(block)


@pytest.mark.parametrize(
    ("price", "currency", "detail"),
    [
        ('"70"', '"XYZ"', "unknown currency"),
        ('"70"', '"XAU"', "unknown currency"),
        ('"70"', '"US"', "three-letter code"),
        ('"70"', '"US$"', "three-letter code"),
        ('"70"', "840", "three-letter code"),
        ('"70"', None, "missing currency"),
        ('"¥7000"', None, "missing currency"),  # a symbol we do not take on trust
        ('"kr 70"', None, "missing currency"),
        ('"XYZ 70"', None, "unknown currency"),
        ('"70.5"', '"JPY"', "more than 0 decimal places"),
        ('"7000.00"', '"JPY"', "more than 0 decimal places"),
        ('"1.5"', '"JPY"', "more than 0 decimal places"),
        ('"1.0001"', '"BHD"', "more than 3 decimal places"),
    ],
)
def test_invalid_currencies(price: str, currency: str | None, detail: str) -> None:
    spec = f'"price": {price}' + (f', "priceCurrency": {currency}' if currency else "")
    source = json.dumps(invoice(totalPaymentDue=None)).replace(
        '"@type": "Invoice"', '"@type": "Invoice", "totalPaymentDue": {' + spec + "}"
    )
    with pytest.raises(InvalidInvoice, match=detail):
        parse_invoice(block_of(source))


def test_max_amount() -> None:
    due = {"price": "50.00", "priceCurrency": "USD"}
    assert parse(invoice(totalPaymentDue=due), max_amount=Decimal(50)).amount_minor == 5000
    assert "above the limit" in invalid(invoice(totalPaymentDue=due), max_amount=Decimal("49.99"))
    # The ceiling is in major units of the invoice's currency, whatever its exponent.
    yen = {"price": "50", "priceCurrency": "JPY"}
    assert parse(invoice(totalPaymentDue=yen), max_amount=Decimal(50)).amount_minor == 50
    assert "above the limit" in invalid(
        invoice(totalPaymentDue={"price": "1000000.01", "priceCurrency": "USD"})
    )


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("2025-02-30", "does not exist"),
        ("2026-13-01", "does not exist"),
        ("2026-00-10", "does not exist"),
        ("2027-02-29", "does not exist"),
        ("1999-12-31", "out of range"),
        ("2101-01-01", "out of range"),
        ("0001-01-01", "out of range"),
        ("12/01/2026", "not an ISO 8601 date"),
        ("2026-W48-1", "not an ISO 8601 date"),
        ("20261201", "not an ISO 8601 date"),
        ("2026-12-1", "not an ISO 8601 date"),
        ("December 1, 2026", "not an ISO 8601 date"),
        ("2026-12-01T25:00:00Z", "impossible time"),
        ("2026-12-01T10:00:00+25:00", "impossible time"),
        ("2026-12-01T10:61", "impossible time"),
        (20261201, "not an ISO 8601 date"),
    ],
)
def test_invalid_dates(value: object, detail: str) -> None:
    assert detail in invalid(invoice(paymentDueDate=value))


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"totalPaymentDue": None}, "missing amount"),
        ({"totalPaymentDue": {"priceCurrency": "USD"}}, "missing amount"),
        ({"paymentDueDate": None}, "missing due date"),
        ({"provider": None}, "missing merchant name"),
        ({"provider": {"@type": "Organization"}}, "missing merchant name"),
        ({"provider": "   "}, "missing merchant name"),
        ({"provider": 42.5}, "not text"),
        ({"provider": ["A", "B"]}, "conflicting values"),
        ({"provider": "A" * 201}, "too long"),
        ({"provider": "Acme\nBank"}, "control characters"),
        ({"provider": "Acme\x00"}, "control characters"),
        ({"provider": "Acme\u2028Bank"}, "control characters"),
        ({"provider": "Acme \u202ecod.exe"}, "control characters"),
        ({"provider": "Acme \u2066x\u2069"}, "control characters"),
        ({"broker": "Xe\rro"}, "control characters"),
        ({"identifier": "I" * 201}, "too long"),
        ({"identifier": "INV\t1"}, "control characters"),
        ({"identifier": True}, "not text"),
        ({"accountId": {"x": 1}}, "not text"),
        ({"url": None}, "missing invoice url"),
        ({"url": "http://pay.acme.example/x"}, "not an https URL"),
        ({"url": "javascript:alert(1)"}, "not an https URL"),
        ({"url": "/relative/path"}, "not an https URL"),
        ({"url": "https://"}, "not an https URL"),
        ({"url": "https://bank.example@evil.example/"}, "user name"),
        ({"url": "https://pay.acme.example/a b"}, "malformed"),
        ({"url": "https://pay.acme.example/\x07"}, "malformed"),
        ({"url": "https://[::1/x"}, "malformed"),
        ({"url": "https://a.example/" + "x" * 2100}, "malformed"),
        ({"url": 42}, "not text"),
    ],
)
def test_invalid_fields(fields: dict[str, Any], detail: str) -> None:
    assert detail in invalid(invoice(**fields))


@pytest.mark.parametrize(
    ("obj", "detail"),
    [
        ({"@type": "PaymentAction", "entity": {"@type": "Order"}}, "without an Invoice"),
        ({"@type": "ActionRequest", "action": {"@type": "ViewAction"}}, "without a payment action"),
        (
            {
                "@type": "Invoice",
                "potentialAction": [{"@type": "PayAction"}, {"@type": "PaymentAction"}],
            },
            "more than one payment action",
        ),
    ],
)
def test_invalid_structure(obj: dict[str, Any], detail: str) -> None:
    block = MarkupBlock(0, 1, "action", obj)
    with pytest.raises(InvalidInvoice, match=detail):
        parse_invoice(block)
    with pytest.raises(InvalidInvoice, match="no Invoice"):
        parse_invoice(MarkupBlock(0, 1, "invoice", {"@type": "Order"}))


def test_microdata_repeats_must_agree() -> None:
    html = """<div itemscope itemtype="https://schema.org/Invoice">
      <meta itemprop="identifier" content="N-1">
      <div itemprop="provider" itemscope><meta itemprop="name" content="Acme"></div>
      <div itemprop="totalPaymentDue" itemscope>
        <span itemprop="price">$70.00</span><span itemprop="price">$7.00</span>
      </div>
      <meta itemprop="paymentDueDate" content="2026-12-01">
      <link itemprop="url" href="https://pay.acme.example/N-1">
    </div>"""
    [block] = find_payment_markup(html)
    with pytest.raises(InvalidInvoice, match="conflicting values for price"):
        parse_invoice(block)
    [same] = find_payment_markup(html.replace("$7.00", "$70.00"))
    assert parse_invoice(same).amount == "70.00"


def test_broken_json_ld_is_invalid() -> None:
    block = block_of('{"@context": "https://schema.org", "@type": "Invoice",}')
    with pytest.raises(InvalidInvoice, match="could not be read"):
        parse_invoice(block)
