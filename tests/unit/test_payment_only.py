"""Authenticate only what could become a card ([milter] authentication_results).

Mail without payment markup, and markup from a domain that is no partner, is decided
without DNS: a resolver that fails the test on any lookup proves it. The byte-level
check that skips the MIME walk is compared with the walk itself on hostile bytes.
"""

from __future__ import annotations

import base64
import quopri

from hypothesis import given, settings
from hypothesis import strategies as st

from inboxpay.card.header import CardSigner
from inboxpay.dns import Record, StaticResolver
from inboxpay.invoice.scan import may_hold_markup, walked
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Action, Reason
from inboxpay.milter.pipeline import Outcome
from tests.support import pipeline
from tests.support.pipeline import DATA, sign


class NoDns(StaticResolver):
    def lookup(self, name: str, rdtype: str) -> list[Record]:
        raise AssertionError(f"DNS lookup for {name} {rdtype}")


NOTICE = (
    b"From: Shop <news@shop.example>\r\nTo: ana@client.example\r\nSubject: news\r\n"
    b"Authentication-Results: mx.example.org; dkim=pass\r\n"
    b"InboxPay-Card: forged\r\nInboxPay-Verdict: card\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
    b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\n\r\nhello\r\n'
    b'--b\r\nContent-Type: text/html; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b'<html><body><p style=3D"color: red">hello</p></body></html>\r\n--b--\r\n'
)


def run(raw: bytes, resolver: StaticResolver, signer: CardSigner, mode: str) -> Outcome:
    return pipeline.run(raw, resolver, signer, authentication_results=mode)


def test_mail_without_markup_is_not_authenticated_but_cleaned(signer: CardSigner) -> None:
    out = run(NOTICE, NoDns(), signer, "payment")
    assert out.verdict.action is Action.PASS
    assert out.evidence is not None and not out.evidence.authenticated
    # Forged results, card and verdict go; nothing of ours is added.
    assert {n for n, _ in out.edits.delete} == {
        "Authentication-Results",
        "InboxPay-Card",
        "InboxPay-Verdict",
    }
    assert out.edits.insert_top == () and out.edits.append == () and out.edits.body is None


def test_markup_from_a_domain_that_is_no_partner_is_removed_without_dns(
    signer: CardSigner,
) -> None:
    mail = (DATA / "xero_invoice.eml").read_bytes().replace(b"post.xero.com", b"attacker.example")
    out = run(mail, NoDns(), signer, "payment")
    assert out.verdict.reason is Reason.NOT_PARTNER
    assert ("InboxPay-Verdict", "removed; reason=not_partner") in out.edits.append
    assert out.edits.insert_top == ()
    assert out.edits.body is not None and b"application/ld+json" not in out.edits.body


def test_partner_markup_is_authenticated(
    resolver: StaticResolver, dkim_key: tuple[bytes, bytes], signer: CardSigner
) -> None:
    raw = sign((DATA / "xero_invoice.eml").read_bytes(), dkim_key[0])
    out = run(raw, resolver, signer, "payment")
    assert out.verdict.action is Action.CARD
    assert out.edits.insert_top[0][0] == "Authentication-Results"


def test_all_authenticates_every_message(signer: CardSigner) -> None:
    out = run(NOTICE, StaticResolver([]), signer, "all")
    assert out.evidence is not None and out.evidence.authenticated
    name, ar = out.edits.insert_top[0]
    assert name == "Authentication-Results" and "dkim=none" in ar


def test_the_walk_is_skipped_for_plain_mail_only() -> None:
    assert not may_hold_markup(RawMessage.from_bytes(NOTICE))
    meta = NOTICE.replace(b"<html>", b'<html><meta charset=3D"utf-8">')
    assert not may_hold_markup(RawMessage.from_bytes(meta))  # what real senders write
    for hidden in (
        NOTICE.replace(b"hello</p>", b"<scr=\r\nipt>x</script></p>"),  # a soft line break
        NOTICE.replace(b"hello</p>", b"=3Cscript>x</script></p>"),  # an escape
        NOTICE.replace(b"hello</p>", b"<scr\x1b(Bipt>"),  # ISO-2022-JP escape
        NOTICE.replace(
            b'charset="utf-8"\r\nContent-Transfer', b"charset=utf-7\r\nContent-Transfer"
        ),
        NOTICE.replace(b"quoted-printable", b"base64"),
        NOTICE.replace(b"<html>", b"=FF=FE<html>"),  # a UTF-16 byte-order mark, encoded
        NOTICE.replace(
            b'charset="utf-8"\r\nContent-Transfer', b"charset*=utf-16''\r\nContent-Transfer"
        ),
    ):
        assert may_hold_markup(RawMessage.from_bytes(hidden)), hidden


_HTML_HEAD = (
    b"Content-Type: text/html",
    b"Content-Type: text/html; charset=utf-8",
    b"Content-Type: text/html; charset=iso-8859-1",
    b"Content-Type: text/html; charset=utf-7",
    b"Content-Type: text/html; charset=utf-16",
    b"Content-Type: text/html; charset=iso-2022-jp",
    b"Content-Type: text/html; charset=shift_jis",
    b"Content-Type: text/html; charset=utf-8/x",
    b'Content-Type: text/html; charset="windows-1252"',
    b'Content-Type: text/html; charset=3D"utf-8"',  # "3D" is no label: doubtful
    b"Content-Type: text/html;\r\n charset=3Dutf-8",
)
_CTE = (b"", b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding: base64")
_FRAGMENTS = (
    "<script type='application/ld+json'>{}</script>",
    "<div itemscope itemtype='https://schema.org/Invoice'>",
    "<p>hello</p>",
    '<meta charset="utf-8">',  # quoted-printable: charset=3D"utf-8"
    "<meta charset=utf-7>",
    "<scr",
    "ipt>",
    "\u017fcript",
    "caf\u00e9",
    "\x1b(B",
    "\ufeff",
    "\x00",
)


@st.composite
def parts(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from(_HTML_HEAD))
    cte = draw(st.sampled_from(_CTE))
    text = "".join(draw(st.lists(st.sampled_from(_FRAGMENTS), max_size=6)))
    codec = draw(st.sampled_from(("utf-8", "utf-16", "latin-1", "iso2022_jp")))
    data = text.encode(codec, "replace")
    if b"quoted" in cte:
        data = quopri.encodestring(data)
    elif b"base64" in cte:
        data = base64.encodebytes(data)
    lines = [head] + ([cte] if cte else [])
    return b"\r\n".join(lines) + b"\r\n\r\n" + data.replace(b"\n", b"\r\n")


@settings(max_examples=500, deadline=None)
@given(st.lists(parts(), min_size=1, max_size=3))
def test_skipping_the_walk_never_hides_what_the_walk_finds(chunks: list[bytes]) -> None:
    body = b"".join(b"--b\r\n" + c + b"\r\n" for c in chunks) + b"--b--\r\n"
    raw = b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' + body
    message = RawMessage.from_bytes(raw)
    if not may_hold_markup(message):
        found = walked(message)
        assert not found.found and not found.unwalked, raw
