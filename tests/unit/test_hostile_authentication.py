"""Hostile mail, authentication family: what a card vouches for is what the partner signed.

Issue 10 items 4a (one bad DKIM tag, and fuzzing every tag and MIME field), 6 (replay of
a genuine partner mail), 7 (repeated MIME fields), 8 (rsa-sha1), 9 (odd MAIL FROM and
Authentication-Results quoting) and 11 (several From addresses). Each message goes through
``pipeline.process`` with real crypto and a static DNS table.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Sequence
from typing import Any

import authres
import authres.core
import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey

from inboxpay import addresses
from inboxpay.card.header import CardSigner, CardVerifier, recipient_hash
from inboxpay.card.keys import public_jwk
from inboxpay.config import DEFAULT_PARTNERS
from inboxpay.dns import Record, StaticResolver
from inboxpay.invoice.scan import scan
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Action, Policy, Reason
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.pipeline import Outcome, Settings, process
from tests.support.pipeline import DATA, RKEY, XERO_IP, xero_resolver

AUTHSERV_ID = "mx.example.org"
ATTACKER_IP = "198.51.100.66"
# What partners sign (dkimpy signs the bottom-most instance of each).
SIGNED = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"mime-version"]
SIGNED += [b"content-type", b"content-transfer-encoding"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def request(amount: str = "10.00", number: str = "INV-1") -> str:
    data = {
        "@context": "http://schema.org",
        "@type": "Invoice",
        "identifier": number,
        "paymentDueDate": "2027-01-15",
        "url": f"https://in.xero.com/v/{number}",
        "provider": {"@type": "Organization", "name": "Acme"},
        "totalPaymentDue": {
            "@type": "PriceSpecification",
            "price": amount,
            "priceCurrency": "USD",
        },
    }
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def mime_mail(
    *,
    top: str = "",
    to: str = "ana@client.example",
    text: str = "plain words",
    html_headers: str = "Content-Type: text/html; charset=utf-8\r\n",
    html: str = "",
    sender: str = "Xero <billing@post.xero.com>",
) -> bytes:
    """text/plain + text/html in multipart/mixed; ``top`` goes above the other fields."""
    return (
        f"{top}From: {sender}\r\nTo: {to}\r\nSubject: Invoice INV-1\r\n"
        "Message-ID: <1@post.xero.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        f"--b\r\n{html_headers}\r\n<html><body>{html or request()}</body></html>\r\n--b--\r\n"
    ).encode()


def dkim_sign(
    raw: bytes,
    key: bytes,
    headers: Sequence[bytes] = SIGNED,
    algorithm: bytes = b"rsa-sha256",
    domain: bytes = b"post.xero.com",
) -> bytes:
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    signature = dkim.sign(
        raw,
        b"s1",
        domain,
        key,
        include_headers=list(headers),
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=algorithm,
    )
    return bytes(signature) + raw


def xero_invoice(key: bytes, to: bytes = b"To: Ana Muller <ana@client.example>\n") -> bytes:
    mail = (DATA / "xero_invoice.eml").read_bytes()
    return dkim_sign(mail.replace(b"To: Ana Muller <ana@client.example>\n", to), key)


def xero_table(dkim_key: tuple[bytes, bytes], *records: Record) -> StaticResolver:
    """The Xero table, ``records`` (an attacker's SPF, a stricter DMARC record) replacing."""
    base = xero_resolver(dkim_key)
    names = ["post.xero.com", "s1._domainkey.post.xero.com", "_dmarc.post.xero.com"]
    replaced = {r.name for r in records}
    kept = [r for n in names if n not in replaced for r in base.lookup(n, "TXT")]
    return StaticResolver([*kept, *records])


def run(
    raw: bytes,
    resolver: StaticResolver,
    signer: CardSigner,
    *,
    ip: str = XERO_IP,
    helo: str = "mail.post.xero.com",
    mail_from: str = "bounce@post.xero.com",
    rcpts: Sequence[str] = ("ana@client.example",),
    policy: Policy | None = None,
    authentication_results: str = "payment",
) -> Outcome:
    facts = MessageFacts(
        client_ip=ip,
        helo=helo,
        mail_from=mail_from,
        recipients=list(rcpts),
        message=RawMessage.from_bytes(raw),
    )
    settings_ = Settings(
        AUTHSERV_ID, signer, RKEY, 86400, authentication_results=authentication_results
    )
    return process(facts, resolver, policy or Policy(DEFAULT_PARTNERS), settings_)


def ar_of(out: Outcome) -> str:
    name, value = out.edits.insert_top[0]
    assert name == "Authentication-Results"
    return value


def card_claims(out: Outcome, signer: CardSigner) -> dict[str, Any]:
    assert out.verdict.action is Action.CARD, out.verdict
    public = OKPKey.import_key(public_jwk(signer.key, signer.kid))
    return CardVerifier([public]).verify(dict(out.edits.append)["InboxPay-Card"])


def delivered(raw: bytes, out: Outcome) -> RawMessage:
    msg = RawMessage.from_bytes(raw)
    return RawMessage(msg.headers, out.edits.body if out.edits.body is not None else msg.body)


def assert_removed(raw: bytes, out: Outcome, reason: str) -> None:
    """Removed for ``reason``: no card, and nothing we read as markup left in the body."""
    assert out.verdict.header == f"removed; reason={reason}", out.verdict
    assert ("InboxPay-Verdict", f"removed; reason={reason}") in out.edits.append
    assert not any(n == "InboxPay-Card" for n, _ in out.edits.append)
    assert scan(delivered(raw, out)).blocks == []


def parse_strictly(value: str) -> authres.core.AuthenticationResultsHeader:
    """authres's public parse drops a property it cannot read; strict mode raises instead."""
    header = authres.core.AuthenticationResultsHeader(authres.all_features(), strict=True)
    header._parse_text = value.replace("\r\n", " ")
    header._parse()
    return header


# --- item 4a: one bad DKIM tag ends all checks ------------------------------------------


def with_tag(raw: bytes, tag: str, value: bytes | None, mode: str = "replace") -> bytes:
    """``raw`` with its first DKIM-Signature's ``tag`` replaced, duplicated, added or removed."""
    name, _, rest = raw.partition(b":")
    field, sep, tail = rest.partition(b"\r\n")
    while tail[:1] in (b" ", b"\t"):  # unfold the signature
        line, sep, tail = tail.partition(b"\r\n")
        field += b" " + line.strip()
    specs = [s.strip() for s in field.split(b";") if s.strip()]
    key = tag.encode()
    spec = key + b"=" + (value or b"")
    found = [i for i, s in enumerate(specs) if s.split(b"=", 1)[0].strip() == key]
    if mode == "remove":
        specs = [s for i, s in enumerate(specs) if i not in found]
    elif mode == "duplicate" or not found:
        specs.insert(1, spec)
    else:
        specs[found[0]] = spec
    return name + b": " + b"; ".join(specs) + sep + tail


def test_an_empty_l_tag_is_a_permerror_of_that_signature_only(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    good = xero_invoice(dkim_key[0])
    signature = good[: good.index(b"\r\nFrom:") + 2]
    bad = with_tag(signature, "l", b"")  # dkimpy: int(b"") raises ValueError
    out = run(bad + good, resolver, signer)
    assert out.verdict.action is Action.CARD, out.verdict
    ar = ar_of(out)
    assert "dkim=permerror" in ar and "dkim=pass" in ar, ar


def test_an_exception_from_dkimpy_parsing_the_message_is_a_logged_permerror(
    dkim_key: tuple[bytes, bytes],
    signer: CardSigner,
    resolver: StaticResolver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(message: bytes) -> object:
        raise RuntimeError("a dkimpy bug nobody found yet")

    raw = xero_invoice(dkim_key[0])
    monkeypatch.setattr(dkim, "rfc822_parse", broken)
    with caplog.at_level(logging.WARNING, logger="inboxpay.auth.dkim"):
        out = run(raw, resolver, signer)
    assert_removed(raw, out, "dkim_fail")
    assert "dkim=permerror" in ar_of(out)
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


TAGS = ["v", "a", "b", "bh", "c", "d", "h", "i", "l", "q", "s", "t", "x", "z"]
_TEXT = st.characters(blacklist_categories=("Cs", "Cc"))
TAG_VALUES = st.one_of(
    st.just(b""),
    st.text(_TEXT, max_size=40).map(lambda t: t.encode("utf-8")),
    st.text("0123456789", min_size=1, max_size=120).map(str.encode),
    st.builds(
        lambda c, n: (c * n).encode("utf-8"),
        st.sampled_from(["A", "9", "é", "=", ":", "@", "a:"]),
        st.integers(300, 6000),
    ),
    st.sampled_from(
        [
            b"rsa-sha1",
            b"ed25519-sha256",
            b"relaxed/relaxed",
            b"simple/bogus",
            b"dns/txt",
            b"post.xero.com",
            b"xero.com",
            b"@post.xero.com",
            b"post.xero.com.",
            b"from:from:to",
            b"A===",
            b"\xff\xfe",
        ]
    ),
)


@FUZZ
@given(
    tag=st.sampled_from(TAGS),
    value=TAG_VALUES,
    mode=st.sampled_from(["replace", "duplicate", "remove"]),
)
@example(tag="l", value=b"", mode="replace")  # the reproduction of the review
@example(tag="i", value=b"post.xero.com", mode="replace")  # i= == d=: dkimpy IndexError
def test_no_dkim_tag_escapes(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, tag: str, value: bytes, mode: str
) -> None:
    raw = with_tag(xero_invoice(dkim_key[0]), tag, value, mode)
    out = run(raw, xero_resolver(dkim_key), signer)
    assert out.verdict.reason is not Reason.INTERNAL_ERROR  # nothing reached the fail-safe
    parse_strictly(ar_of(out))
    if out.verdict.action is Action.CARD:
        assert out.evidence is not None and any(s.result == "pass" for s in out.evidence.dkim)
    else:
        assert out.verdict.action in (Action.REMOVE, Action.SKIP), out.verdict
        if out.verdict.action is Action.REMOVE:
            assert scan(delivered(raw, out)).blocks == []


MIME_FIELDS = ["Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version"]
MIME_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "text/html",
            "text/html; charset=utf-8",
            'text/html; charset="x-unknown"',
            "text/plain",
            "multipart/mixed; boundary=b",
            'multipart/mixed; boundary="b"',
            "multipart/alternative; boundary=evil",
            "multipart/mixed; boundary=",
            "multipart/digest; boundary=b",
            "message/rfc822",
            "text/html; charset*=utf-8''%E2%82%AC",
            "base64",
            "quoted-printable",
            "8bit",
            "x-uuencode",
            "attachment",
            'inline; filename="a.html"',
            "attachment; filename*0=a; filename*1=b",
            "1.0",
            "1.0 (produced by evil)",
            "2.0",
        ]
    ),
    st.text(_TEXT, max_size=60),
    st.builds(
        lambda c, n: c * n, st.sampled_from([";", "=", '"', "a", "é"]), st.integers(300, 5000)
    ),
)


@FUZZ
@given(
    where=st.sampled_from(["top", "text", "html"]),
    name=st.sampled_from(MIME_FIELDS),
    value=MIME_VALUES,
    mode=st.sampled_from(["above", "below", "replace"]),
    charset=st.sampled_from(["utf-8", "latin-1"]),
)
def test_no_mime_field_escapes(
    signer: CardSigner, where: str, name: str, value: str, mode: str, charset: str
) -> None:
    line = f"{name}: {value}\r\n"
    raw = mime_mail()
    block = {
        "top": b"From:",
        "text": b"Content-Type: text/plain",
        "html": b"Content-Type: text/html",
    }
    at = raw.index(block[where])
    end = raw.index(b"\r\n", at) + 2
    new = line.encode(charset, "replace")
    if mode == "above":
        raw = raw[:at] + new + raw[at:]
    elif mode == "below":
        raw = raw[:end] + new + raw[end:]
    elif where == "top":
        ct = raw.index(b"Content-Type: multipart/mixed")
        raw = raw[:ct] + new + raw[raw.index(b"\r\n", ct) + 2 :]
    else:
        raw = raw[:at] + new + raw[end:]
    # Unsigned mail in the partner's name, from a host its SPF does not list.
    out = run(raw, StaticResolver([]), signer, ip=ATTACKER_IP)
    assert out.verdict.reason is not Reason.INTERNAL_ERROR
    assert out.verdict.action is not Action.CARD
    assert scan(delivered(raw, out)).blocks == []


# --- item 6: replay of a genuine partner mail --------------------------------------------


ATTACKER_SPF = Record("attacker.example", "TXT", (b"v=spf1 ip4:198.51.100.66 -all",))


def replay(raw: bytes, dkim_key: tuple[bytes, bytes], signer: CardSigner, **kw: Any) -> Outcome:
    """``raw`` re-sent from the attacker's own server, SPF passing for its own domain."""
    return run(
        raw,
        xero_table(dkim_key, ATTACKER_SPF),
        signer,
        ip=ATTACKER_IP,
        helo="mx.attacker.example",
        mail_from="bounce@attacker.example",
        **kw,
    )


def test_a_replayed_partner_mail_loses_its_card_to_spf_alignment(
    dkim_key: tuple[bytes, bytes], signer: CardSigner
) -> None:
    raw = xero_invoice(dkim_key[0])  # the attacker's own invoice, addressed to itself
    out = replay(raw, dkim_key, signer, rcpts=("victim@client.example",))
    assert "spf=pass" in ar_of(out) and "dkim=pass" in ar_of(out)
    assert_removed(raw, out, "spf_unaligned")


def test_a_replay_reaches_no_one_the_partner_did_not_address(
    dkim_key: tuple[bytes, bytes], signer: CardSigner
) -> None:
    raw = xero_invoice(dkim_key[0])
    policy = Policy(DEFAULT_PARTNERS, require_spf_pass=False)
    out = replay(raw, dkim_key, signer, rcpts=("victim@client.example",), policy=policy)
    assert_removed(raw, out, "recipient_not_addressed")


def test_only_envelope_recipients_in_the_signed_to_or_cc_are_in_the_card(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    to = b"To: Ana Muller <ana@client.example>\nCc: Bo <BO@Client.Example>\n"
    raw = xero_invoice(dkim_key[0], to)
    out = run(
        raw, resolver, signer, rcpts=("ana@client.example", "bo@client.example", "eve@x.example")
    )
    claims = card_claims(out, signer)
    assert claims["rcpt"] == sorted(
        [recipient_hash(RKEY, "ana@client.example"), recipient_hash(RKEY, "bo@client.example")]
    )
    assert out.verdict.payers == ("ana@client.example", "bo@client.example")


def test_a_to_field_added_above_the_signed_one_addresses_no_one(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    raw = b"To: victim@client.example\r\n" + xero_invoice(dkim_key[0])
    out = run(raw, resolver, signer, rcpts=("victim@client.example",))
    assert "dkim=pass" in ar_of(out)  # DKIM signs the bottom To, which is Ana's
    assert_removed(raw, out, "recipient_not_addressed")


def test_recipient_fields_the_signature_leaves_out_address_no_one(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    mail = (DATA / "xero_invoice.eml").read_bytes()
    raw = dkim_sign(mail, dkim_key[0], [h for h in SIGNED if h not in (b"to", b"cc")])
    out = run(raw, resolver, signer)
    assert_removed(raw, out, "recipient_not_addressed")


def test_addresses_are_compared_normalised_with_idna(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    to = "To: Ana <ANA@Bücher.Example.>\n".encode()
    raw = xero_invoice(dkim_key[0], to)
    out = run(raw, resolver, signer, rcpts=("<ana@xn--bcher-kva.example>",))
    claims = card_claims(out, signer)
    assert claims["rcpt"] == [recipient_hash(RKEY, "ana@bücher.example")]
    assert recipient_hash(RKEY, "Ana@XN--BCHER-KVA.example") == recipient_hash(
        RKEY, "ana@bücher.example"
    )


@pytest.mark.parametrize(
    ("address", "normal"),
    [
        ("Ana@Client.Example", "ana@client.example"),
        (" <ana@client.example.> ", "ana@client.example"),
        ("ana@Bücher.example", "ana@xn--bcher-kva.example"),
        ('"a@b"@Post.Partner.Example', '"a@b"@post.partner.example'),
        ("no-domain", "no-domain"),
    ],
)
def test_one_address_normalisation(address: str, normal: str) -> None:
    assert addresses.normalize(address) == normal


@pytest.mark.parametrize(
    ("dmarc", "reason"),
    [(b"v=DMARC1; p=reject", None), (b"v=DMARC1; p=reject; aspf=s", "spf_unaligned")],
)
def test_spf_must_be_aligned_with_from_relaxed_unless_the_record_says_strict(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, dmarc: bytes, reason: str | None
) -> None:
    bounce_spf = Record("bounces.post.xero.com", "TXT", (b"v=spf1 ip4:192.0.2.10 -all",))
    table = xero_table(dkim_key, bounce_spf, Record("_dmarc.post.xero.com", "TXT", (dmarc,)))
    raw = xero_invoice(dkim_key[0])
    out = run(raw, table, signer, mail_from="b@bounces.post.xero.com")
    if reason is None:
        assert card_claims(out, signer)["auth"] == {
            "dkim": "pass",
            "dkim_domain": "post.xero.com",
            "spf": "pass",
            "spf_domain": "bounces.post.xero.com",
            "spf_aligned": True,
            "dmarc_policy": "reject",
        }
    else:
        assert_removed(raw, out, reason)


# --- item 7: repeated MIME fields ---------------------------------------------------------


def test_a_content_type_prepended_above_the_signed_one_is_ambiguous(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    # The partner signs a mail whose plain text quotes the attacker's notes verbatim;
    # under the attacker's boundary those notes are an HTML part with another invoice.
    notes = (
        "Notes from your supplier:\r\n--evil\r\nContent-Type: text/html\r\n\r\n"
        + request("9999.00", "INV-666")
        + "\r\n--evil--"
    )
    signed = dkim_sign(mime_mail(text=notes), dkim_key[0])
    raw = b'Content-Type: multipart/mixed; boundary="evil"\r\n' + signed
    out = run(raw, resolver, signer)
    assert "dkim=pass" in ar_of(out)
    assert_removed(raw, out, "ambiguous_mime")


@pytest.mark.parametrize(
    "html_headers",
    [
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n"
        "Content-Transfer-Encoding: base64\r\n",
        "Content-Type: text/html; charset=utf-8\r\nContent-Type: text/plain\r\n",
        "MIME-Version: 1.0\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
    ],
)
def test_a_field_repeated_in_a_body_part_is_ambiguous(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver, html_headers: str
) -> None:
    raw = dkim_sign(mime_mail(html_headers=html_headers), dkim_key[0])
    out = run(raw, resolver, signer)
    assert "dkim=pass" in ar_of(out)
    assert_removed(raw, out, "ambiguous_mime")


@pytest.mark.parametrize("left_out", [b"content-type", b"mime-version"])
def test_top_level_mime_fields_the_signature_leaves_out_are_ambiguous(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver, left_out: bytes
) -> None:
    raw = dkim_sign(mime_mail(), dkim_key[0], [h for h in SIGNED if h != left_out])
    out = run(raw, resolver, signer)
    assert "dkim=pass" in ar_of(out)
    assert_removed(raw, out, "ambiguous_mime")


def test_a_repeated_top_level_mime_version_is_ambiguous(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    raw = b"MIME-Version: 1.0\r\n" + dkim_sign(mime_mail(), dkim_key[0])
    assert run(dkim_sign(mime_mail(), dkim_key[0]), resolver, signer).verdict.action is Action.CARD
    assert_removed(raw, run(raw, resolver, signer), "ambiguous_mime")


# --- item 8: rsa-sha1 and small keys ------------------------------------------------------


def test_an_rsa_sha1_signature_is_policy_and_never_a_pass(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    mail = (DATA / "xero_invoice.eml").read_bytes()
    raw = dkim_sign(mail, dkim_key[0], algorithm=b"rsa-sha1")
    out = run(raw, resolver, signer)
    ar = ar_of(out)
    assert re.search(r'dkim=policy reason="[^"]*rsa-sha1[^"]*" header\.d=post\.xero\.com', ar), ar
    assert "dkim=pass" not in ar
    assert_removed(raw, out, "dkim_fail")


def _small_rsa_key(bits: int) -> rsa.RSAPrivateKey:
    """An RSA key below what cryptography will generate (it refuses under 1024 bits)."""
    rng = random.Random(bits)

    def prime() -> int:
        while True:
            n = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1  # two top bits set
            if all(pow(a, n - 1, n) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
                return n

    p, q, e = prime(), prime(), 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public)
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def test_a_key_under_1024_bits_stays_refused(signer: CardSigner) -> None:
    key = _small_rsa_key(768)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    table = xero_resolver((pem, der))
    assert key.key_size == 768
    raw = dkim_sign((DATA / "xero_invoice.eml").read_bytes(), pem)
    out = run(raw, table, signer)
    assert "dkim=pass" not in ar_of(out)
    assert_removed(raw, out, "dkim_fail")


# --- item 9: odd MAIL FROM, and Authentication-Results that always parse ------------------


def test_a_quoted_local_part_with_an_at_sign_is_split_at_the_last_at(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver
) -> None:
    raw = xero_invoice(dkim_key[0])
    out = run(raw, resolver, signer, mail_from='<"a@b"@post.xero.com>')
    assert out.evidence is not None and out.evidence.spf is not None
    assert out.evidence.spf.domain == "post.xero.com"
    assert out.verdict.action is Action.CARD, out.verdict
    spf = [r for r in parse_strictly(ar_of(out)).results if r.method == "spf"]
    assert [(r.result, r.smtp_mailfrom) for r in spf[:1]] == [("pass", "post.xero.com")]


def read_back(value: str) -> str:
    """What authres gives back for ``value`` written as RFC 8601 asks: printable ASCII, in
    a quoted-string (whose quoted-pairs authres keeps) unless it is a token."""
    text = re.sub(r"[^\x20-\x7e]", "?", value)
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+", text):
        return text
    return re.sub(r'(["\\])', r"\\\1", text)


HOSTILE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"))


@FUZZ
@given(
    mail_from=HOSTILE.filter(lambda t: len(t) < 100),
    helo=HOSTILE.filter(lambda t: len(t) < 100),
    d=HOSTILE.filter(lambda t: len(t) < 60 and ";" not in t),
    s=HOSTILE.filter(lambda t: len(t) < 60 and ";" not in t),
)
@example(mail_from='"a@b"@post.partner.example', helo="", d="post.xero.com", s="s1")
@example(mail_from="", helo="", d="a b", s='"x"')
def test_every_authentication_results_we_write_parses(
    signer: CardSigner, mail_from: str, helo: str, d: str, s: str
) -> None:
    signature = f"DKIM-Signature: v=1; a=rsa-sha256; d={d}; s={s}; h=from; bh=AAAA; b=AAAA\r\n"
    raw = signature.encode() + b"From: a@post.xero.com\r\nSubject: hi\r\n\r\nhello\r\n"
    # Mail without markup is authenticated only with authentication_results = "all".
    out = run(
        raw,
        StaticResolver([]),
        signer,
        helo=helo,
        mail_from=mail_from,
        authentication_results="all",
    )
    assert out.evidence is not None and out.evidence.spf is not None
    header = parse_strictly(ar_of(out))
    assert header.authserv_id == AUTHSERV_ID
    assert [r.method for r in header.results] == ["dkim", "spf", "spf", "dmarc"]
    mailfrom = addresses.normalize_domain(out.evidence.spf.domain)
    assert header.results[1].smtp_mailfrom == (read_back(mailfrom) if mailfrom else None)


# --- item 11: several From addresses ------------------------------------------------------


@pytest.mark.parametrize(
    "from_fields",
    [
        "From: Xero <billing@post.xero.com>, Pay <pay@attacker.example>\r\n",
        "From: Xero <billing@post.xero.com>\r\nFrom: Pay <pay@attacker.example>\r\n",
    ],
)
def test_several_from_addresses_get_one_dmarc_result_per_author_domain(
    dkim_key: tuple[bytes, bytes], signer: CardSigner, resolver: StaticResolver, from_fields: str
) -> None:
    mail = mime_mail().replace(b"From: Xero <billing@post.xero.com>\r\n", from_fields.encode())
    raw = dkim_sign(mail, dkim_key[0])
    # No single author: removed before any DNS, and no Authentication-Results of ours...
    out = run(raw, resolver, signer)
    assert out.evidence is not None and not out.evidence.authenticated
    assert not out.edits.insert_top
    assert_removed(raw, out, "unaligned")
    # ...unless every message is authenticated.
    out = run(raw, resolver, signer, authentication_results="all")
    ar = ar_of(out)
    dmarc = [(r.result, r.header_from) for r in parse_strictly(ar).results if r.method == "dmarc"]
    assert dmarc == [("pass", "post.xero.com"), ("none", "attacker.example")], ar
    assert_removed(raw, out, "unaligned")
