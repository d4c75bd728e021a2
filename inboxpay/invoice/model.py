"""An invoice as read from a message's payment markup, checked and normalised."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from inboxpay.errors import InboxPayError


@dataclass(frozen=True)
class Invoice:
    """One payment request.

    ``kind`` is the markup form it came in: "action" (an ActionRequest or PaymentAction
    around the invoice, Outlook style), "invoice" (a bare JSON-LD Invoice, Gmail style) or
    "microdata". Amounts are exact: ``amount_minor`` in the currency's minor units and
    ``amount`` the same as a decimal string at the currency's exponent ("70.00", JPY "7000").
    """

    kind: str
    partner_name: str  # the broker (billing platform) named in the markup; may be ""
    merchant_name: str
    merchant_account: str  # the merchant's id for the payee account; may be ""
    number: str  # invoice number, or "<account>-<due date>" when the markup has none
    amount_minor: int
    currency: str
    amount: str
    due: datetime.date
    url: str


class InvalidInvoice(InboxPayError):
    """Payment markup that is not a payable invoice; ``detail`` says why, briefly."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
