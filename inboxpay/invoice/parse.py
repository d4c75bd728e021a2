"""Read a block of payment markup into a checked Invoice, or say briefly why it is not one.

Everything a payment card will show is checked here: the amount is exact (Decimal, never
float, never rounded), the currency is a real ISO 4217 code, the date exists, names are
short single-line text, and the link is an https URL.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from decimal import Decimal
from urllib.parse import urlsplit

from inboxpay.currency import CurrencyError, exponent, format_minor, to_minor
from inboxpay.invoice.markup import (
    KIND_SIGNED,
    PAY_ACTIONS,
    SIGNED_REQUEST,
    MarkupBlock,
    canonical_jsonld,
    schema_types,
)
from inboxpay.invoice.model import InvalidInvoice, Invoice
from inboxpay.invoice.signed import SignedRequest, read_signed

_MAX_TEXT = 200
_MAX_URL = 2048
_YEARS = range(2000, 2101)
# Symbols that name one currency unambiguously enough to stand for it without priceCurrency.
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_NUMBER = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
_PRICE_TEXT = re.compile(r"([^\d.,]*?)\s*([\d.,]+)\s*([^\d.,]*)")
_CODE = re.compile(r"[A-Za-z]{3}")
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?"
)
# Besides line breaks and other control characters, these could make a name on a card read
# other than it is: the bidirectional marks, embeddings, overrides and isolates.
_BIDI_CONTROLS = frozenset(
    [chr(0x061C), chr(0x200E), chr(0x200F)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)


#: Default ceiling, in major units of the invoice's own currency ([policy] max_amount).
MAX_AMOUNT = Decimal(1_000_000)


def parse_invoice(block: MarkupBlock, max_amount: Decimal = MAX_AMOUNT) -> Invoice:
    """The invoice ``block`` describes; InvalidInvoice when anything needed is missing or wrong."""
    if not block.data:
        raise InvalidInvoice("payment markup could not be read")
    if SIGNED_REQUEST in schema_types(block.data):
        raise InvalidInvoice("a signed action request is read with parse_signed")
    return parse_request(block.data, block.kind, max_amount)


def parse_signed(
    block: MarkupBlock, max_amount: Decimal = MAX_AMOUNT
) -> tuple[SignedRequest, Invoice]:
    """A SignedActionRequest's claims (not yet verified) and the invoice its payload holds."""
    if not block.data:
        raise InvalidInvoice("payment markup could not be read")
    signed = read_signed(block.data)
    request = canonical_jsonld(signed.action_request)
    if not isinstance(request, dict) or "ActionRequest" not in schema_types(request):
        raise InvalidInvoice("actionRequestSerialized is not an ActionRequest")
    return signed, parse_request(request, KIND_SIGNED, max_amount)


def parse_request(data: dict[str, object], kind: str, max_amount: Decimal = MAX_AMOUNT) -> Invoice:
    """The invoice of one JSON-LD request or microdata item (``kind`` as in MarkupBlock)."""
    invoice, action = _locate(data)
    _check_status(_first(invoice, "paymentStatus"))
    merchant = _text(_name(_first(invoice, "provider", "seller")), "merchant name", numbers=False)
    if not merchant:
        raise InvalidInvoice("missing merchant name")
    partner = _text(_name(_first(invoice, "broker")), "partner name", numbers=False)
    amount, currency = _price(invoice, action)
    minor = _minor_units(amount, currency, max_amount)
    due = _date(_first(invoice, "paymentDueDate", "paymentDue"))
    account = _text(_first(invoice, "accountId"), "account id")
    merchant_account = _text(_first(action, "merchantId"), "merchant id") if action else ""
    number = _text(_identifier(_first(invoice, "identifier", "confirmationNumber")), "number")
    if not number:
        # No number in the markup: account and due date still tell invoices apart.
        base = account or merchant_account
        number = f"{base}-{due.isoformat()}" if base else due.isoformat()
    url = _url(
        _first(invoice, "url")
        or _link(invoice.get("potentialAction"))
        or (_first(action, "url", "target") if action else None)
    )
    return Invoice(
        kind=kind,
        partner_name=partner,
        merchant_name=merchant,
        merchant_account=merchant_account or account,
        number=number,
        amount_minor=minor,
        currency=currency,
        amount=format_minor(minor, currency),
        due=due,
        url=url,
    )


def _locate(data: dict[str, object]) -> tuple[dict[str, object], dict[str, object] | None]:
    """The Invoice node, and the payment action around or inside it if there is one."""
    types = schema_types(data)
    if "ActionRequest" in types:
        return _action_request(data)
    if types & PAY_ACTIONS:
        entity = _entity_of(data)
        if entity is None:
            raise InvalidInvoice("payment action without an Invoice")
        return entity, data
    if "Invoice" not in types:
        raise InvalidInvoice("no Invoice in the markup")
    return data, _payment_action(data.get("potentialAction"))


def _action_request(data: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """Outlook's ActionRequest: "actions" with "entity" beside them (as published), or an
    "action" holding the entity (as earlier senders wrote it)."""
    if not isinstance(data.get("originator", ""), str):
        raise InvalidInvoice("originator is not text")
    listed = [*_list(data.get("actions")), *_list(data.get("action"))]
    actions = [a for a in listed if isinstance(a, dict) and schema_types(a) & PAY_ACTIONS]
    if not actions:
        raise InvalidInvoice("ActionRequest without a payment action")
    merchants = {_text(_first(a, "merchantId"), "merchant id") for a in actions}
    if len(merchants) > 1:
        raise InvalidInvoice("payment actions disagree on merchantId")
    entities = [_entity(data.get("entity")), *map(_entity_of, actions)]
    found = [e for e in entities if e is not None]
    if not found:
        raise InvalidInvoice("ActionRequest without an Invoice")
    if any(e != found[0] for e in found[1:]):
        raise InvalidInvoice("conflicting invoices in one ActionRequest")
    return found[0], actions[0]


def _entity_of(action: dict[str, object]) -> dict[str, object] | None:
    for key in ("entity", "object"):
        entity = _entity(action.get(key))
        if entity is not None:
            return entity
    return None


def _entity(value: object) -> dict[str, object] | None:
    entity = _one(value, "entity")
    return entity if isinstance(entity, dict) and "Invoice" in schema_types(entity) else None


def _list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _payment_action(value: object) -> dict[str, object] | None:
    candidates = value if isinstance(value, list) else [value]
    actions = [a for a in candidates if isinstance(a, dict) and schema_types(a) & PAY_ACTIONS]
    if len(actions) > 1:
        raise InvalidInvoice("more than one payment action")
    return actions[0] if actions else None


# Where an Invoice's potentialAction may link to it: the payment first, then the view.
_LINK_ACTIONS = ("PayAction", "PaymentAction", "ViewAction")


def _link(value: object) -> object:
    """The invoice link a potentialAction gives (its url, or its target or EntryPoint)."""
    actions = [a for a in _list(value) if isinstance(a, dict)]
    for kind in _LINK_ACTIONS:
        for action in actions:
            if kind in schema_types(action):
                link = _first(action, "url", "target")
                if link is not None:
                    return link
    return None


# paymentStatus values with nothing left to pay: a card would invite a second payment.
_SETTLED = {
    "paymentcomplete": "the invoice is already paid",
    "paymentautomaticallyapplied": "the invoice is paid automatically",
}


def _check_status(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInvoice("paymentStatus is not text")
    for status in schema_types({"@type": value}):  # "PaymentDue", "http://schema.org/PaymentDue"
        if status.lower() in _SETTLED:
            raise InvalidInvoice(_SETTLED[status.lower()])


def _one(value: object, what: str) -> object:
    """A property's single value: repeats (microdata, JSON-LD arrays) must agree."""
    if not isinstance(value, list):
        return value
    values = [v for v in value if v is not None]
    if not values:
        return None
    if any(v != values[0] for v in values[1:]):
        raise InvalidInvoice(f"conflicting values for {what}")
    return values[0]


def _first(node: dict[str, object] | None, *keys: str) -> object:
    """The value of the first of ``keys`` that ``node`` has."""
    if node is None:
        return None
    for key in keys:
        value = _one(node.get(key), key)
        if value is not None and value != "":
            return value
    return None


def _name(value: object) -> object:
    """An Organization's (or Person's) name, or a name given as a plain string."""
    return _one(value.get("name"), "name") if isinstance(value, dict) else value


def _identifier(value: object) -> object:
    """An identifier given as text, a number, or a PropertyValue."""
    return _one(value.get("value"), "identifier") if isinstance(value, dict) else value


def _text(value: object, what: str, numbers: bool = True) -> str:
    """Short single-line text, stripped; "" when absent. Ids may be JSON numbers, names not."""
    if value is None:
        return ""
    kinds = (str, int, Decimal) if numbers else (str,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InvalidInvoice(f"{what} is not text")
    text = str(value).strip()
    if len(text) > _MAX_TEXT:
        raise InvalidInvoice(f"{what} is too long")
    if any(c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        raise InvalidInvoice(f"{what} has control characters")
    return text


def _price(invoice: dict[str, object], action: dict[str, object] | None) -> tuple[Decimal, str]:
    """The amount due and its currency code, from wherever the markup puts them."""
    due = _first(invoice, "totalPaymentDue")
    if isinstance(due, dict):
        amount = _first(due, "price", "value")
        code = _first(due, "priceCurrency", "currency")
    elif due is not None:
        amount, code = due, _first(invoice, "priceCurrency")
    elif _first(invoice, "totalPrice", "price") is not None:
        amount = _first(invoice, "totalPrice", "price")
        code = _first(invoice, "priceCurrency")
    else:
        amount = _first(action, "price")
        code = _first(action, "priceCurrency")
    if amount is None:
        raise InvalidInvoice("missing amount")
    value, symbol_code = _amount(amount)
    if code is None:
        if not symbol_code:
            raise InvalidInvoice("missing currency (no priceCurrency or known symbol)")
        code = symbol_code
    if not isinstance(code, str) or not _CODE.fullmatch(code.strip()):
        raise InvalidInvoice("currency is not a three-letter code")
    return value, code.strip().upper()


def _amount(value: object) -> tuple[Decimal, str | None]:
    """A JSON number, or text like "1,234.50", "$70.00" or "70.00 EUR"; and the currency the
    text's symbol names (None when there is no symbol).

    An unknown symbol comes back as "" so that it is an error unless priceCurrency is given.
    """
    if isinstance(value, bool):
        raise InvalidInvoice("amount is not a number")
    if isinstance(value, int):
        return Decimal(value), None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInvoice("amount is not a finite number")
        return value, None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInvoice("amount is not a number")
    match = _PRICE_TEXT.fullmatch(value.strip())
    if match is None or not _NUMBER.fullmatch(match.group(2)):
        raise InvalidInvoice("amount is not a number")
    symbol = (match.group(1) + match.group(3)).strip()
    if "-" in symbol or "\u2212" in symbol:
        raise InvalidInvoice("amount is negative")
    symbol = symbol.lstrip("+").strip()
    amount = Decimal(match.group(2).replace(",", ""))
    if not symbol:
        return amount, None
    if symbol in _SYMBOLS:
        return amount, _SYMBOLS[symbol]
    if _CODE.fullmatch(symbol):
        return amount, symbol.upper()
    return amount, ""


def _minor_units(amount: Decimal, currency: str, max_amount: Decimal) -> int:
    try:
        places = exponent(currency)
        power = amount.as_tuple().exponent
        if isinstance(power, int) and -power > places:
            # "1.500" USD is refused even though it equals 1.50: it may be a mistyped
            # currency or a thousands separator, and money is not guessed.
            raise InvalidInvoice(f"more than {places} decimal places for {currency}")
        minor = to_minor(amount, currency)
    except CurrencyError as e:
        raise InvalidInvoice(str(e)) from None
    if minor <= 0:
        raise InvalidInvoice("amount is not positive")
    if amount > max_amount:
        raise InvalidInvoice("amount is above the limit")
    return minor


def _date(value: object) -> datetime.date:
    """A due date from "2026-12-01" or a date-time (its own calendar date, not UTC's)."""
    if value is None:
        raise InvalidInvoice("missing due date")
    match = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidInvoice("due date is not an ISO 8601 date")
    year, month, day, hour, minute, second, off_hour, off_minute = (
        int(g) if g is not None else 0 for g in match.groups()
    )
    if hour > 23 or minute > 59 or second > 59 or off_hour > 23 or off_minute > 59:
        raise InvalidInvoice("due date has an impossible time")
    try:
        due = datetime.date(year, month, day)
    except ValueError:
        raise InvalidInvoice("due date does not exist") from None
    if due.year not in _YEARS:
        raise InvalidInvoice("due date is out of range")
    return due


def _url(value: object) -> str:
    """The invoice's link: an absolute https URL (an EntryPoint gives its urlTemplate)."""
    if isinstance(value, dict):
        value = _first(value, "urlTemplate", "url")
    if value is None:
        raise InvalidInvoice("missing invoice url")
    if not isinstance(value, str):
        raise InvalidInvoice("invoice url is not text")
    url = value.strip()
    if len(url) > _MAX_URL or any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        raise InvalidInvoice("invoice url is malformed")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidInvoice("invoice url is malformed") from None
    if parts.scheme.lower() != "https" or not host:
        raise InvalidInvoice("invoice url is not an https URL")
    if "@" in parts.netloc:
        raise InvalidInvoice("invoice url has a user name")  # https://bank.example@evil.example
    return url
