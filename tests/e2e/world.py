"""The test Internet: sender domains, their DNS records, DKIM keys and sending hosts."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .dnsserver import Zones
from .mail import Client

AUTHSERV_ID = "mx.test.example"

BOB = "bob@example.test"
CAROL = "carol@example.test"
DAVE = "dave@example.test"
ERIN = "erin@disabled.test"
RECIPIENTS = (BOB, CAROL, DAVE, ERIN)

# Sending hosts, as XCLIENT presents them.
XERO_MX = Client(addr="192.0.2.10", helo="mail.post.xero.test", name="mail.post.xero.test")
ACME_MX = Client(addr="192.0.2.20", helo="mail.acme.test", name="mail.acme.test")
ATTACKER_MX = Client(addr="198.51.100.66", helo="mx.attacker.test", name="mx.attacker.test")
# Not in any SPF record.
ROGUE_HOST = Client(addr="203.0.113.5", helo="rogue.example.net")

# Headers every test signature covers (dkimpy signs the bottom-most instance).
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
]


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_pem: bytes
    public_der: bytes

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(self.public_der).decode("ascii")

    def signature(self, message: bytes, length: bool = False) -> bytes:
        """The DKIM-Signature header field (with CRLF) for ``message``, relaxed/relaxed."""
        return bytes(
            dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=SIGNED_HEADERS,
                length=length,
            )
        )

    def sign(self, message: bytes, length: bool = False) -> bytes:
        return self.signature(message, length) + message


def new_dkim_key(domain: str, selector: str) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(domain, selector, private_pem, public_der)


@dataclass(frozen=True)
class SenderDomain:
    domain: str
    selector: str
    spf: str
    dmarc: str
    host: Client


SENDERS = (
    SenderDomain(
        "post.xero.test", "s1", "v=spf1 ip4:192.0.2.10 -all", "v=DMARC1; p=reject", XERO_MX
    ),
    # A merchant that sends its own invoices.
    SenderDomain("acme.test", "sel", "v=spf1 ip4:192.0.2.20 -all", "v=DMARC1; p=reject", ACME_MX),
    # An attacker with a perfectly valid domain of its own...
    SenderDomain(
        "attacker.test", "evil", "v=spf1 ip4:198.51.100.66 -all", "v=DMARC1; p=none", ATTACKER_MX
    ),
    # ...and a lookalike of the partner's domain, fully authenticated.
    SenderDomain(
        "post-xero.test", "s1", "v=spf1 ip4:198.51.100.66 -all", "v=DMARC1; p=reject", ATTACKER_MX
    ),
)


def new_dkim_keys() -> dict[str, DkimKey]:
    return {s.domain: new_dkim_key(s.domain, s.selector) for s in SENDERS}


def zones(keys: dict[str, DkimKey]) -> Zones:
    z = Zones()
    for sender in SENDERS:
        key = keys[sender.domain]
        z.txt[sender.domain] = sender.spf
        z.txt[key.record_name] = key.record
        z.txt[f"_dmarc.{sender.domain}"] = sender.dmarc
        z.mx[sender.domain] = (sender.host.helo, 10)
        z.a[sender.host.helo] = sender.host.addr
    # The organizational domain of post.xero.test, for DMARC's fallback lookup.
    z.txt["_dmarc.xero.test"] = "v=DMARC1; p=reject"
    return z
