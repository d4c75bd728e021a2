"""The message path without an MTA: a Xero DKIM key and DNS table, a card signer, and
``run`` to put raw mail through ``pipeline.process`` (fixtures: tests/unit/conftest.py)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import OKPKey

from inboxpay.card.header import CardSigner
from inboxpay.config import DEFAULT_PARTNERS
from inboxpay.dns import Record, StaticResolver
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Policy
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.pipeline import Outcome, Settings, process

DATA = Path(__file__).resolve().parent.parent / "data" / "invoices"
XERO_IP = "192.0.2.10"
RKEY = b"r" * 32


def new_dkim_key() -> tuple[bytes, bytes]:
    """An RSA-2048 key pair: PEM private key, DER public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def new_signer() -> CardSigner:
    return CardSigner(OKPKey.generate_key("Ed25519", private=True), "test-kid")


def xero_resolver(dkim_key: tuple[bytes, bytes]) -> StaticResolver:
    """SPF, the DKIM key and DMARC p=reject for post.xero.com."""
    p = base64.b64encode(dkim_key[1])
    return StaticResolver(
        [
            Record("post.xero.com", "TXT", (b"v=spf1 ip4:192.0.2.10 -all",)),
            Record("s1._domainkey.post.xero.com", "TXT", (b"v=DKIM1; k=rsa; p=", p[:200], p[200:])),
            Record("_dmarc.post.xero.com", "TXT", (b"v=DMARC1; p=reject",)),
        ]
    )


def sign(raw: bytes, key: bytes, length: bool = False) -> bytes:
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    header = dkim.sign(
        raw,
        b"s1",
        b"post.xero.com",
        key,
        include_headers=[b"from", b"subject", b"to", b"cc", b"mime-version", b"content-type"],
        length=length,
    )
    return header + raw


def run(
    raw: bytes,
    resolver: StaticResolver,
    signer: CardSigner,
    ip: str = XERO_IP,
    rcpts: tuple[str, ...] = ("ana@client.example",),
    policy: Policy | None = None,
    truncated: bool = False,
    cpu_deadline: float = 5.0,
    authentication_results: str = "payment",
) -> Outcome:
    """``raw`` from Xero's MX to ``rcpts``; ``truncated`` as the filter says past
    max_message_bytes."""
    facts = MessageFacts(
        client_ip=ip,
        helo="mail.post.xero.com",
        mail_from="bounce@post.xero.com",
        recipients=list(rcpts),
        message=RawMessage.from_bytes(raw),
        truncated=truncated,
    )
    settings = Settings(
        "mx.example.org",
        signer,
        RKEY,
        86400,
        cpu_deadline=cpu_deadline,
        authentication_results=authentication_results,
    )
    return process(facts, resolver, policy or Policy(DEFAULT_PARTNERS), settings)
