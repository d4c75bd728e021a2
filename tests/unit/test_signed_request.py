"""Outlook's SignedActionRequest (dynamic senders, issue 9 item 2), through the message path:
the partner's RS256 signature, the sender, the age, and what happens without keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from inboxpay.card.header import CardSigner
from inboxpay.config import DEFAULT_PARTNERS
from inboxpay.dns import StaticResolver
from inboxpay.invoice.markup import find_payment_markup
from inboxpay.invoice.model import InvalidInvoice
from inboxpay.invoice.parse import parse_signed
from inboxpay.milter.decide import Action, Policy, Reason
from inboxpay.milter.pipeline import Outcome
from tests.support.pipeline import run, sign

SENDER = "Harbour Web Studio Ltd <Messaging-Service@post.xero.com>"
ACTION_REQUEST = {
    "@type": "ActionRequest",
    "@context": "http://schema.org/extensions",
    "originator": "4a1c7e0b-2d6f-4b8e-9c3a-5e7f1d2b8a90",
    "actions": [{"@type": "PaymentAction", "merchantId": "HWS-7731", "displayId": "hws"}],
    "entity": {
        "@type": "Invoice",
        "identifier": "INV-0077",
        "provider": {"@type": "Organization", "name": "Harbour Web Studio Ltd"},
        "broker": {"@type": "Organization", "name": "Xero"},
        "paymentDueDate": "2026-12-15",
        "totalPaymentDue": {
            "@type": "PriceSpecification",
            "price": "310.00",
            "priceCurrency": "NZD",
        },
        "url": "https://in.xero.com/Dyn0077",
    },
}


@pytest.fixture(scope="module")
def partner_key() -> RSAKey:
    return RSAKey.generate_key(2048, private=True)


def public(key: RSAKey) -> RSAKey:
    return RSAKey.import_key(key.as_pem(private=False))


def token(key: Any, alg: str = "RS256", **changes: object) -> str:
    """A DynamicActionRequest as published (iat as a string), signed with ``key``."""
    payload: dict[str, object] = {
        "originator": ACTION_REQUEST["originator"],
        "actionRequestSerialized": json.dumps(ACTION_REQUEST, indent=2).replace("\n", "\r\n"),
        "iat": str(int(time.time()) - 60),
        "sender": "MESSAGING-SERVICE@POST.XERO.COM",
        "sub": "customer-8812",
    }
    payload.update(changes)
    header = {"typ": "JWT", "alg": alg}
    return jws.serialize_compact(header, json.dumps(payload).encode(), key, algorithms=[alg])


def mail(signed: str) -> bytes:
    request = {
        "@type": "SignedActionRequest",
        "@context": "http://schema.org/extensions",
        "signedActionRequest": signed,
    }
    return (
        f"From: {SENDER}\r\nTo: Ana <ana@client.example>\r\nSubject: Invoice INV-0077\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<html><head><script type="application/ld+json">{json.dumps(request)}</script>'
        "</head><body><p>Invoice INV-0077</p></body></html>\r\n"
    ).encode()


def keyed(key: RSAKey) -> Policy:
    return Policy(DEFAULT_PARTNERS, request_keys={"xero": (public(key),)})


def outcome(
    signed: str,
    resolver: StaticResolver,
    dkim_key: tuple[bytes, bytes],
    signer: CardSigner,
    policy: Policy,
) -> Outcome:
    return run(sign(mail(signed), dkim_key[0]), resolver, signer, policy=policy)


def test_a_request_the_partner_signed_gets_a_card(
    resolver: StaticResolver, dkim_key: tuple[bytes, bytes], signer: CardSigner, partner_key: RSAKey
) -> None:
    out = outcome(token(partner_key), resolver, dkim_key, signer, keyed(partner_key))
    assert out.verdict.action is Action.CARD, out.verdict
    assert out.verdict.invoice is not None
    assert (out.verdict.invoice.number, out.verdict.invoice.amount) == ("INV-0077", "310.00")
    assert out.verdict.invoice.kind == "signed"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        # Signed by someone else.
        (lambda k: token(RSAKey.generate_key(2048, private=True)), Reason.BAD_REQUEST_SIGNATURE),
        # Tampered after signing: the amount in the payload changed.
        (
            lambda k: _tampered(token(k)),
            Reason.BAD_REQUEST_SIGNATURE,
        ),
        # An HMAC keyed with the partner's public key: an old JOSE confusion attack.
        (lambda k: _hmac_with_public_key(k), Reason.BAD_REQUEST_SIGNATURE),
        (lambda k: _unsigned(), Reason.BAD_REQUEST_SIGNATURE),
        (lambda k: token(k, sender="someone@post.xero.com"), Reason.REQUEST_SENDER_MISMATCH),
        (lambda k: token(k, iat=int(time.time()) - 6 * 86400), Reason.REQUEST_EXPIRED),
        (lambda k: token(k, iat=int(time.time()) + 3600), Reason.REQUEST_EXPIRED),
    ],
)
def test_a_request_the_partner_did_not_vouch_for_is_removed(
    resolver: StaticResolver,
    dkim_key: tuple[bytes, bytes],
    signer: CardSigner,
    partner_key: RSAKey,
    make: Any,
    reason: Reason,
) -> None:
    out = outcome(make(partner_key), resolver, dkim_key, signer, keyed(partner_key))
    assert (out.verdict.action, out.verdict.reason) == (Action.REMOVE, reason)
    assert out.edits.body is not None and b"signedActionRequest" not in out.edits.body


def _tampered(signed: str) -> str:
    head, body, sig = signed.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["actionRequestSerialized"] = payload["actionRequestSerialized"].replace(
        "310.00", "9310.00"
    )
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_with_public_key(key: RSAKey) -> str:
    """HS256 keyed with the partner's public PEM (JOSE libraries refuse to make this)."""
    genuine = token(key)
    _, body, _ = genuine.split(".")
    head = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    mac = hmac.new(key.as_pem(private=False), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{_b64(mac.digest())}"


def _unsigned() -> str:
    def b64(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = {
        "originator": "x",
        "actionRequestSerialized": json.dumps(ACTION_REQUEST),
        "iat": int(time.time()),
        "sender": "messaging-service@post.xero.com",
        "sub": "s",
    }
    return f"{b64({'alg': 'none'})}.{b64(payload)}."


def test_a_partner_without_keys_cannot_use_dynamic_senders(
    resolver: StaticResolver, dkim_key: tuple[bytes, bytes], signer: CardSigner, partner_key: RSAKey
) -> None:
    out = outcome(token(partner_key), resolver, dkim_key, signer, Policy(DEFAULT_PARTNERS))
    assert out.verdict.reason is Reason.UNSIGNED_PARTNER


def test_another_partners_key_does_not_vouch(
    resolver: StaticResolver, dkim_key: tuple[bytes, bytes], signer: CardSigner, partner_key: RSAKey
) -> None:
    policy = Policy(DEFAULT_PARTNERS, request_keys={"freshbooks": (public(partner_key),)})
    out = outcome(token(partner_key), resolver, dkim_key, signer, policy)
    assert out.verdict.reason is Reason.UNSIGNED_PARTNER


def test_the_signature_never_replaces_mail_authentication(
    resolver: StaticResolver, dkim_key: tuple[bytes, bytes], signer: CardSigner, partner_key: RSAKey
) -> None:
    # Genuinely signed by the partner, but the mail itself is not DKIM-signed.
    out = run(mail(token(partner_key)), resolver, signer, policy=keyed(partner_key))
    assert out.verdict.reason is Reason.DKIM_FAIL


@pytest.mark.parametrize(
    ("signed", "problem"),
    [
        ("not-a-jws", "signedActionRequest is not a compact JWS"),
        ("a.bm90IGpzb24.c", "signedActionRequest payload is not JSON"),
        ("a.b!!.c", "signedActionRequest is not base64url"),
    ],
)
def test_a_malformed_signed_request_is_invalid(signed: str, problem: str) -> None:
    doc = {"@type": "SignedActionRequest", "signedActionRequest": signed}
    [block] = find_payment_markup(f'<script type="application/ld+json">{json.dumps(doc)}</script>')
    with pytest.raises(InvalidInvoice, match=problem):
        parse_signed(block)


def test_the_payload_lacking_a_claim_is_invalid(partner_key: RSAKey) -> None:
    signed = token(partner_key, sender=None)
    doc = {"@type": "SignedActionRequest", "signedActionRequest": signed}
    [block] = find_payment_markup(f'<script type="application/ld+json">{json.dumps(doc)}</script>')
    with pytest.raises(InvalidInvoice, match="lacks originator, sender, sub"):
        parse_signed(block)


def test_policy_max_age_is_configurable(
    resolver: StaticResolver, dkim_key: tuple[bytes, bytes], signer: CardSigner, partner_key: RSAKey
) -> None:
    old = token(partner_key, iat=int(time.time()) - 3 * 3600)
    policy = replace(keyed(partner_key), signed_request_max_age=3600)
    assert outcome(old, resolver, dkim_key, signer, policy).verdict.reason is Reason.REQUEST_EXPIRED
    assert (
        outcome(old, resolver, dkim_key, signer, keyed(partner_key)).verdict.action is Action.CARD
    )
