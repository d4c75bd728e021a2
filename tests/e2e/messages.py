"""Test mail as raw bytes (CRLF), built from templates without re-flattening.

The bytes built here are exactly what goes over SMTP and what DKIM signs, so a
test can compare them with what lands in the Maildir.
"""

from __future__ import annotations

import base64
import json
import quopri
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

CRLF = b"\r\n"
TEMPLATES = Path(__file__).resolve().parent / "templates"
DATE = "Tue, 15 Dec 2026 09:30:00 +0000"


@dataclass(frozen=True)
class Invoice:
    """The schema.org Invoice a partner embeds as JSON-LD."""

    number: str = "INV-0042"
    due: str = "2027-01-15"
    account: str = "ACC-7"
    url: str = "https://in.xero.test/view/abc123"
    merchant: str = "Acme Supplies"
    broker: str | None = "Xero"
    amount: str = "70.00"
    currency: str = "USD"

    def json_ld(self) -> str:
        data: dict[str, object] = {
            "@context": "http://schema.org",
            "@type": "Invoice",
            "identifier": self.number,
            "paymentDueDate": self.due,
            "accountId": self.account,
            "url": self.url,
            "provider": {"@type": "Organization", "name": self.merchant},
        }
        if self.broker is not None:
            data["broker"] = {"@type": "Organization", "name": self.broker}
        data["totalPaymentDue"] = {
            "@type": "PriceSpecification",
            "price": self.amount,
            "priceCurrency": self.currency,
        }
        return json.dumps(data, separators=(",", ":"))

    def script(self) -> str:
        return f'<script type="application/ld+json">\n{self.json_ld()}\n</script>'

    def fields(self) -> dict[str, str]:
        return {
            "jsonld": self.script(),
            "number": self.number,
            "merchant": self.merchant,
            "broker": self.broker or self.merchant,
            "amount": self.amount,
            "currency": self.currency,
            "due_text": self.due,
            "url": self.url,
        }


def _template(name: str, fields: dict[str, str]) -> bytes:
    text = Template((TEMPLATES / name).read_text("utf-8")).substitute(fields)
    return crlf(text.encode("utf-8"))


def crlf(data: bytes) -> bytes:
    """Every line end as CRLF, as on the wire."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def boundary(kind: str) -> str:
    return f"=_{kind}_{uuid.uuid4().hex}"


def text_part(text: bytes) -> bytes:
    return (
        b'Content-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: 7bit\r\n\r\n" + text
    )


def html_part(html: bytes) -> bytes:
    # Quoted-printable like real senders: the markup is split by soft line breaks.
    encoded = crlf(quopri.encodestring(html.replace(CRLF, b"\n")))
    return (
        b'Content-Type: text/html; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded
    )


def pdf_part(name: str) -> bytes:
    pdf = (
        b"%PDF-1.4\n% test invoice\n1 0 obj << /Type /Catalog >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )
    encoded = base64.encodebytes(pdf).replace(b"\n", CRLF)
    return (
        f'Content-Type: application/pdf; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + encoded


def multipart(subtype: str, parts: Sequence[bytes], close: bool = True) -> tuple[bytes, bytes]:
    """The Content-Type header line and the body of a multipart entity.

    ``close=False`` leaves out the close delimiter, as a sender preparing an
    ``l=`` append attack would.
    """
    b = boundary(subtype)
    header = f'Content-Type: multipart/{subtype}; boundary="{b}"\r\n'.encode("ascii")
    body = b"".join(b"--" + b.encode("ascii") + CRLF + p.rstrip(CRLF) + CRLF for p in parts)
    if close:
        body += b"--" + b.encode("ascii") + b"--" + CRLF
    return header, body


def entity(content_type_and_body: tuple[bytes, bytes]) -> bytes:
    """A nested multipart as a part of its parent."""
    header, body = content_type_and_body
    return header + CRLF + body


def headers(sender: str, to: Sequence[str], subject: str, extra: Sequence[str] = ()) -> bytes:
    domain = sender.rsplit("@", 1)[1].rstrip(">")
    fields = [
        f"From: {sender}",
        f"To: {', '.join(to)}",
        f"Subject: {subject}",
        f"Date: {DATE}",
        f"Message-ID: <{uuid.uuid4().hex}@{domain}>",
        "MIME-Version: 1.0",
        *extra,
    ]
    return "".join(f"{f}\r\n" for f in fields).encode("utf-8")


def message(head: bytes, content: tuple[bytes, bytes]) -> bytes:
    content_type, body = content
    return head + content_type + CRLF + body


def invoice_mail(
    invoice: Invoice,
    sender: str = "Xero on behalf of Acme Supplies <billing@post.xero.test>",
    to: Sequence[str] = ("Bob <bob@example.test>",),
    extra_headers: Sequence[str] = (),
) -> bytes:
    """An invoice as partners send it: text + HTML (with JSON-LD) + a PDF copy."""
    fields = invoice.fields()
    alternative = multipart(
        "alternative",
        [text_part(_template("invoice.txt", fields)), html_part(_template("invoice.html", fields))],
    )
    body = multipart("mixed", [entity(alternative), pdf_part(f"{invoice.number}.pdf")])
    subject = f"Invoice {invoice.number} from {invoice.merchant} for {invoice.account}"
    return message(headers(sender, to, subject, extra_headers), body)


def notice_parts(subject: str, text: str) -> list[bytes]:
    fields = {"subject": subject, "text": text}
    return [text_part(_template("notice.txt", fields)), html_part(_template("notice.html", fields))]


def notice_mail(
    sender: str,
    to: Sequence[str] = ("Bob <bob@example.test>",),
    subject: str = "Your weekly summary",
    text: str = "Nothing needs your attention this week.",
    extra_headers: Sequence[str] = (),
    close: bool = True,
) -> bytes:
    """An ordinary mail with no payment markup: text + HTML."""
    body = multipart("alternative", notice_parts(subject, text), close=close)
    return message(headers(sender, to, subject, extra_headers), body)


def appended_invoice_part(mail: bytes, invoice: Invoice) -> bytes:
    """``mail`` (built with ``close=False``) plus an HTML part with ``invoice``, then the close.

    This is what an attacker adds after the ``l=`` body length of a genuine signature.
    """
    marker = b'boundary="'
    start = mail.index(marker) + len(marker)
    b = mail[start : mail.index(b'"', start)]
    html = _template("invoice.html", invoice.fields())
    return mail + b"--" + b + CRLF + html_part(html).rstrip(CRLF) + CRLF + b"--" + b + b"--" + CRLF


def malformed_mail(sender: str, to: Sequence[str], invoice: Invoice) -> bytes:
    """Broken MIME: an unused boundary, garbage base64, raw 8-bit bytes in the Subject."""
    head = (
        f"From: {sender}\r\nTo: {', '.join(to)}\r\n".encode()
        + b"Subject: Rechnung f\xfcr M\xe4rz \xe2\x82\xac 70.00\r\n"
        + f"Date: {DATE}\r\nMessage-ID: <{uuid.uuid4().hex}@post.xero.test>\r\n".encode()
        + b"MIME-Version: 1.0\r\n"
        + b'Content-Type: multipart/alternative; boundary="declared-but-never-used"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
    )
    body = (
        b"This is not base64 at all: !!!@@@###$$$ \xff\xfe\r\n"
        b"Q29udGVudC1UeXBlOiB0ZXh0L2h0bWw=*&^%$\r\n"
        b"--some-other-boundary\r\n"
        b"Content-Type: text/html\r\n\r\n" + crlf(invoice.script().encode("utf-8")) + b"\r\n"
        b"--some-other-boundary--\r\n"
    )
    return head + CRLF + body
