"""Payment processors: the adapter interface, the v1 wire protocol and its HTTP client,
and the sandbox processor that implements the protocol with test cards.

The sidecar imports from here; the sandbox is the package :mod:`inboxpay.processor.sandbox`
and is imported only by the ``processor-sandbox`` command and tests.
"""

from inboxpay.processor.adapter import Processor
from inboxpay.processor.client import ProcessorClient
from inboxpay.processor.errors import (
    MalformedMessage,
    ProcessorError,
    ProcessorRejected,
    ProcessorTimeout,
    ProcessorUnavailable,
    SealError,
)
from inboxpay.processor.keys import load_api_key, load_public_jwk, load_public_jwk_file
from inboxpay.processor.protocol import (
    BillingAddress,
    CardSecret,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    InvoiceRef,
    Merchant,
)
from inboxpay.processor.seal import seal_card

__all__ = [
    "BillingAddress",
    "CardSecret",
    "ChargeRequest",
    "ChargeResult",
    "ChargeStatus",
    "InvoiceRef",
    "MalformedMessage",
    "Merchant",
    "Processor",
    "ProcessorClient",
    "ProcessorError",
    "ProcessorRejected",
    "ProcessorTimeout",
    "ProcessorUnavailable",
    "SealError",
    "load_api_key",
    "load_public_jwk",
    "load_public_jwk_file",
    "seal_card",
]
