"""A sample signed invoice, for a newcomer's first run (``inboxpay send-sample``).

It comes from the development partner ``sample`` that ``inboxpay init`` writes:
its SPF, DKIM and DMARC records are ``[[dns.static]]`` entries in the same
config, so the milter authenticates it on any machine, no zone server needed.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import smtplib
from email.utils import format_datetime, make_msgid
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from inboxpay.errors import InboxPayError
from inboxpay.keys import write_private

DOMAIN = "sample.inboxpay.test"
SELECTOR = "s1"
SENDER = f"billing@{DOMAIN}"
URL_HOST = f"invoices.{DOMAIN}"


class SampleError(InboxPayError):
    """The sample could not be sent (no MTA listening, say)."""


def generate_dkim_key(path: Path) -> str:
    """Write an RSA-2048 private key (0600) and return its DKIM TXT record value."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_private(
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


def message(to: str, amount: str = "70.00", currency: str = "USD") -> bytes:
    number = f"INV-{secrets.randbelow(90000) + 10000}"
    due = (datetime.date.today() + datetime.timedelta(days=14)).isoformat()
    token = secrets.token_urlsafe(9)
    invoice = (
        '{"@context": "http://schema.org", "@type": "Invoice", '
        f'"identifier": "{number}", "paymentDueDate": "{due}", "accountId": "DEMO-1", '
        f'"url": "https://{URL_HOST}/i/{token}", '
        '"provider": {"@type": "Organization", "name": "Wide World Importers"}, '
        '"broker": {"@type": "Organization", "name": "InboxPay Sample Billing"}, '
        '"totalPaymentDue": {"@type": "PriceSpecification", '
        f'"price": "{amount}", "priceCurrency": "{currency}"}}}}'
    )
    boundary = "=_sample_" + secrets.token_hex(6)
    lines = [
        f"From: Wide World Importers via InboxPay Sample <{SENDER}>",
        f"To: <{to}>",
        f"Subject: Invoice {number} from Wide World Importers",
        f"Date: {format_datetime(datetime.datetime.now(datetime.UTC))}",
        f"Message-ID: {make_msgid(domain=DOMAIN)}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Invoice {number}: {currency} {amount}, due {due}.",
        f"View it at https://{URL_HOST}/i/{token}",
        "",
        f"--{boundary}",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head>",
        f'<script type="application/ld+json">{invoice}</script>',
        "</head><body>",
        f"<p>Invoice <b>{number}</b> from Wide World Importers:",
        f"{currency} {amount}, due {due}.</p>",
        "</body></html>",
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def signed(raw: bytes, key_file: Path) -> bytes:
    header = dkim.sign(
        raw,
        SELECTOR.encode(),
        DOMAIN.encode(),
        key_file.read_bytes(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"content-type"],
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
            "local Postfix (config/postfix/main.cf.snippet) or pass --smtp HOST:PORT."
        ) from None
