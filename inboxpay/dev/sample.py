"""A sample signed invoice, for a newcomer's first run (``inboxpay send-sample``).

It comes from the development partner ``sample`` that ``inboxpay init`` writes:
its SPF, DKIM and DMARC records are ``[[dns.static]]`` entries in the same
config, so the milter authenticates it on any machine, no zone server needed.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import secrets
import smtplib
import time
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import RSAKey

from inboxpay import keyfile
from inboxpay.errors import InboxPayError

DOMAIN = "sample.inboxpay.test"
SELECTOR = "s1"
SENDER = f"billing@{DOMAIN}"
URL_HOST = f"invoices.{DOMAIN}"
ORIGINATOR = "inboxpay-sample"
#: The development partner's key pair for signed action requests, under the config's keys/.
REQUEST_KEY = "sample-request.pem"
REQUEST_PUBLIC_KEY = "sample-request.pub.pem"


class SampleError(InboxPayError):
    """The sample could not be sent (no MTA listening, say)."""


def generate_dkim_key(path: Path) -> str:
    """Write an RSA-2048 private key (0600) and return its DKIM TXT record value."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keyfile.create(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode("ascii")


def static_records(dkim_txt: str) -> list[tuple[str, str, str]]:
    return [
        (DOMAIN, "TXT", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all"),
        (f"{SELECTOR}._domainkey.{DOMAIN}", "TXT", dkim_txt),
        (f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=reject"),
    ]


#: The markup formats ``send-sample --format`` writes (docs/markup.md has one of each).
FORMATS = ("invoice-jsonld", "action-request", "signed-action-request", "invoice-microdata")
MERCHANT = "Wide World Importers"
BROKER = "InboxPay Sample Billing"


def message(
    to: str,
    amount: str = "70.00",
    currency: str = "USD",
    markup_format: str = "invoice-jsonld",
    request_key: Path | None = None,
) -> bytes:
    """A sample invoice mail in one of ``FORMATS``; the signed format needs ``request_key``,
    the development partner's private key that ``inboxpay init`` writes."""
    number = f"INV-{secrets.randbelow(90000) + 10000}"
    due = (datetime.date.today() + datetime.timedelta(days=14)).isoformat()
    url = f"https://{URL_HOST}/i/{secrets.token_urlsafe(9)}"
    invoice: dict[str, object] = {
        "@context": "http://schema.org",
        "@type": "Invoice",
        "identifier": number,
        "paymentDueDate": due,
        "accountId": "DEMO-1",
        "url": url,
        "provider": {"@type": "Organization", "name": MERCHANT},
        "broker": {"@type": "Organization", "name": BROKER},
        "totalPaymentDue": {
            "@type": "PriceSpecification",
            "price": amount,
            "priceCurrency": currency,
        },
    }
    markup = _markup(markup_format, invoice, to, request_key)
    boundary = "=_sample_" + secrets.token_hex(6)
    lines = [
        f"From: {MERCHANT} via InboxPay Sample <{SENDER}>",
        f"To: <{to}>",
        f"Subject: Invoice {number} from {MERCHANT}",
        f"Date: {format_datetime(datetime.datetime.now(datetime.UTC))}",
        f"Message-ID: {make_msgid(domain=DOMAIN)}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Invoice {number}: {currency} {amount}, due {due}.",
        f"View it at {url}",
        "",
        f"--{boundary}",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head>",
        markup.head,
        "</head><body>",
        f"<p>Invoice <b>{number}</b> from {MERCHANT}:",
        f"{currency} {amount}, due {due}.</p>",
        markup.body,
        "</body></html>",
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


@dataclass(frozen=True)
class _Markup:
    head: str = ""
    body: str = ""


def _script(doc: dict[str, object]) -> str:
    return f'<script type="application/ld+json">{json.dumps(doc)}</script>'


def _markup(
    markup_format: str, invoice: dict[str, object], to: str, request_key: Path | None
) -> _Markup:
    if markup_format == "invoice-jsonld":
        return _Markup(head=_script(invoice))
    if markup_format == "invoice-microdata":
        return _Markup(body=_microdata(invoice))
    entity = {k: v for k, v in invoice.items() if k != "@context"}
    action_request: dict[str, object] = {
        "@type": "ActionRequest",
        "@context": "http://schema.org/extensions",
        "originator": ORIGINATOR,
        "actions": [{"@type": "PaymentAction", "merchantId": "WWI-1", "displayId": "wwi"}],
        "entity": entity,
    }
    if markup_format == "action-request":
        return _Markup(head=_script(action_request))
    if markup_format == "signed-action-request":
        if request_key is None:
            raise SampleError("the signed-action-request format needs the partner's request key")
        token = sign_request(action_request, request_key, to)
        return _Markup(
            head=_script(
                {
                    "@type": "SignedActionRequest",
                    "@context": "http://schema.org/extensions",
                    "signedActionRequest": token,
                }
            )
        )
    raise SampleError(f"--format: expected one of {', '.join(FORMATS)}, got {markup_format!r}")


def sign_request(action_request: dict[str, object], key_file: Path, subject: str) -> str:
    """A DynamicActionRequest as Outlook's dynamic senders write it, signed RS256."""
    key = RSAKey.import_key(key_file.read_bytes())
    payload = {
        "originator": ORIGINATOR,
        "actionRequestSerialized": json.dumps(action_request),
        "iat": int(time.time()),
        "sender": SENDER,
        "sub": subject,
    }
    header = {"typ": "JWT", "alg": "RS256"}
    return jws.serialize_compact(header, json.dumps(payload).encode(), key, algorithms=["RS256"])


def _microdata(invoice: dict[str, object]) -> str:
    due = invoice["totalPaymentDue"]
    assert isinstance(due, dict)
    esc = html.escape
    return (
        '<div itemscope itemtype="http://schema.org/Invoice">'
        f'<meta itemprop="identifier" content="{esc(str(invoice["identifier"]))}">'
        f'<meta itemprop="accountId" content="{esc(str(invoice["accountId"]))}">'
        f'<meta itemprop="paymentDueDate" content="{esc(str(invoice["paymentDueDate"]))}">'
        f'<link itemprop="url" href="{esc(str(invoice["url"]))}">'
        '<div itemprop="provider" itemscope itemtype="http://schema.org/Organization">'
        f'<meta itemprop="name" content="{esc(MERCHANT)}"></div>'
        '<div itemprop="broker" itemscope itemtype="http://schema.org/Organization">'
        f'<meta itemprop="name" content="{esc(BROKER)}"></div>'
        '<div itemprop="totalPaymentDue" itemscope itemtype="http://schema.org/PriceSpecification">'
        f'<meta itemprop="price" content="{esc(str(due["price"]))}">'
        f'<meta itemprop="priceCurrency" content="{esc(str(due["priceCurrency"]))}"></div>'
        "</div>"
    )


def generate_request_key(private: Path, public: Path) -> None:
    """The development partner's key pair for signed action requests (RSA-2048)."""
    key = RSAKey.generate_key(2048, private=True)
    keyfile.create(private, key.as_pem(private=True))
    public.write_bytes(key.as_pem(private=False))


def signed(raw: bytes, key_file: Path) -> bytes:
    header = dkim.sign(
        raw,
        SELECTOR.encode(),
        DOMAIN.encode(),
        key_file.read_bytes(),
        include_headers=[
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"mime-version",
            b"content-type",
        ],
    )
    return bytes(header) + raw


def send(raw: bytes, to: str, host: str, port: int) -> None:
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.sendmail(SENDER, [to], raw)
    except (OSError, smtplib.SMTPException) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SampleError(
            f"could not submit to the MTA at {host}:{port} ({reason}). Attach the milter to a "
            "local Postfix (inboxpay/data/postfix/main.cf.snippet) or pass --smtp HOST:PORT."
        ) from None
