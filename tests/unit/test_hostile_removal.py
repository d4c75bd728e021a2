"""Hostile mail, removal family: removing a payment request never leaves or creates one.

Issue 10 items 1 (splicing) and 3 (too complex, too large). Each message goes through
``pipeline.process`` with real crypto and a static DNS table (fixtures of test_pipeline).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest

from inboxpay.dns import StaticResolver
from inboxpay.invoice import crosscheck
from inboxpay.invoice.markup import find_payment_markup, remove_blocks
from inboxpay.invoice.mime import MAX_LOCATE_DEPTH, walk_html
from inboxpay.invoice.removal import MAX_PASSES, NOTICE, clean_html
from inboxpay.message import RawMessage
from inboxpay.milter.decide import Action, Reason, Skip
from inboxpay.milter.pipeline import Outcome
from tests.support.pipeline import DATA, run, sign

REQUEST = (
    '{"@context":"http://schema.org","@type":"Invoice","identifier":"INV-666",'
    '"paymentDueDate":"2027-01-15","url":"https://in.xero.com/view/evil",'
    '"provider":{"@type":"Organization","name":"Acme Supplies"},'
    '"totalPaymentDue":{"@type":"PriceSpecification","price":"9999.00","priceCurrency":"USD"}}'
)
FULL = f'<script type="application/ld+json">{REQUEST}</script>'
DECOY = '<script type="application/ld+json">{"@type":"Invoice"}</script>'
TAIL = 'script type="application/ld+json">{"@type":"Invoice"}</script>'


def spliced(levels: int) -> str:
    """HTML in which each removal of the visible decoys joins the halves of the next one.

    Level 1 is the attack of the review: "<" + decoy + "script ...>{request}</script>".
    """
    return "<" * levels + DECOY + TAIL * (levels - 1) + FULL[1:]


def html_mail(html: str, sender: str = "Billing <billing@attacker.example>") -> bytes:
    return (
        f"From: {sender}\r\nTo: ana@client.example\r\nSubject: invoice\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><body><p>Your invoice</p>{html}<p>Thanks</p></body></html>\r\n"
    ).encode()


def delivered_html(raw: bytes, out: Outcome) -> list[str]:
    """The text of every HTML part of the body the MTA would deliver."""
    msg = RawMessage.from_bytes(raw)
    body = out.edits.body if out.edits.body is not None else msg.body
    return [p.text for p in walk_html(msg.headers, body).parts]


def assert_no_request_left(texts: Sequence[str]) -> None:
    for text in texts:
        assert find_payment_markup(text) == [], text
        assert not crosscheck.disagrees(text, []), text  # nor does a browser see one
        assert "INV-666" not in text or NOTICE in text


# --- item 1: splicing ------------------------------------------------------------------


def test_each_level_of_splicing_really_joins_into_a_request() -> None:
    # The premise: one cut of the decoys makes the next level, and the last a full request.
    assert [b.start for b in find_payment_markup(spliced(1))] == [1]
    once = clean_html_once(spliced(2))
    assert once == spliced(1)
    assert clean_html_once(spliced(1)) == FULL


def clean_html_once(html: str) -> str:
    return remove_blocks(html, find_payment_markup(html))


def test_splicing_attack_leaves_no_request(resolver: StaticResolver, signer) -> None:  # type: ignore[no-untyped-def]
    raw = html_mail(spliced(1))
    out = run(raw, resolver, signer)
    assert out.verdict.action is Action.REMOVE and out.verdict.reason is Reason.NOT_PARTNER
    texts = delivered_html(raw, out)
    assert_no_request_left(texts)
    # The cuts took the markup only: the message around it is still there.
    assert "<p>Your invoice</p>" in texts[0] and "<p>Thanks</p>" in texts[0]
    assert NOTICE not in texts[0]


@pytest.mark.parametrize("levels", range(2, MAX_PASSES + 1))
def test_splicing_within_the_pass_cap_is_cut_away(levels: int) -> None:
    cleaned = clean_html(f"<p>a</p>{spliced(levels - 1)}<p>b</p>")
    assert cleaned == "<p>a</p><p>b</p>"


def test_splicing_past_the_pass_cap_neutralises_the_part(
    resolver: StaticResolver,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    assert clean_html(spliced(MAX_PASSES + 1)) is None
    raw = html_mail(spliced(MAX_PASSES + 1))
    out = run(raw, resolver, signer)
    [text] = delivered_html(raw, out)
    assert NOTICE in text
    assert_no_request_left([text])


def test_a_neutralised_part_keeps_its_charset_and_transfer_encoding(
    resolver: StaticResolver,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    html = f"<p>Caf\u00e9</p>{spliced(MAX_PASSES + 1)}".encode("iso-8859-1")
    raw = (
        b"From: Billing <billing@attacker.example>\r\nTo: ana@client.example\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n"
        b"--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    out = run(raw, resolver, signer)
    assert out.edits.body is not None
    body = out.edits.body
    original = RawMessage.from_bytes(raw).body
    html_at = original.index(b"Content-Type: text/html")
    assert body[:html_at] == original[:html_at]  # the plain part is untouched
    encoded = body[body.index(b"base64\r\n\r\n") + 10 : body.index(b"--b--")]
    assert base64.b64decode(encoded).decode("iso-8859-1").count(NOTICE) == 1


# --- item 3: too complex, too large --------------------------------------------------------


def nested(depth: int, html: bytes) -> bytes:
    """An HTML part inside ``depth`` nested multipart/mixed entities (a body part)."""
    part = b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html + b"\r\n"
    for level in range(depth):
        b = f"n{level}".encode()
        part = (
            b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n"
            b"--" + b + b"\r\n" + part + b"--" + b + b"--\r\n"
        )
    return part


def invoice_with_deep_part(depth: int, deep_html: bytes) -> bytes:
    """A genuine Xero invoice (signed) with one more HTML part ``depth`` levels down."""
    original = (DATA / "xero_invoice.eml").read_bytes().replace(b"\r\n", b"\n")
    close = original.rindex(b"\n--")
    boundary = original[close + 3 : original.index(b"--\n", close + 3)]
    extra = b"--" + boundary + b"\n" + nested(depth, deep_html).replace(b"\r\n", b"\n")
    return original[: close + 1] + extra + original[close + 1 :]


def test_a_request_past_the_mime_limits_is_neutralised_and_carded_nowhere(
    resolver: StaticResolver,
    dkim_key,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    raw = sign(invoice_with_deep_part(12, FULL.encode()), dkim_key[0])
    out = run(raw, resolver, signer)
    # The top-level invoice is genuine, but a part was left unread: no card.
    assert out.verdict.action is Action.SKIP and out.verdict.skip is Skip.TOO_COMPLEX
    assert ("InboxPay-Verdict", "skipped; reason=too_complex") in out.edits.append
    assert not any(name == "InboxPay-Card" for name, _ in out.edits.append)
    assert out.edits.body is not None
    assert b"INV-666" not in out.edits.body and NOTICE.encode() in out.edits.body
    assert b"application/ld+json" not in out.edits.body  # the readable one is cut too


def test_a_part_past_the_limits_without_markup_is_kept(
    resolver: StaticResolver,
    dkim_key,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    raw = sign(invoice_with_deep_part(12, b"<p>just words</p>"), dkim_key[0])
    out = run(raw, resolver, signer)
    assert out.verdict.skip is Skip.TOO_COMPLEX
    assert out.edits.body is not None and b"<p>just words</p>" in out.edits.body
    assert NOTICE.encode() not in out.edits.body


def test_nesting_past_the_hard_cap_is_replaced_by_a_valid_notice_part(
    resolver: StaticResolver,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    body = nested(MAX_LOCATE_DEPTH + 20, FULL.encode())
    head, _, content = body.partition(b"\r\n\r\n")
    raw = b"From: Billing <billing@post.xero.com>\r\nMIME-Version: 1.0\r\n" + head + b"\r\n\r\n"
    out = run(raw + content, resolver, signer)
    assert out.verdict.skip is Skip.TOO_COMPLEX
    new = out.edits.body
    assert new is not None and b"INV-666" not in new and NOTICE.encode() in new
    # What replaced the unwalked multipart is itself a well-formed multipart.
    walk = walk_html(RawMessage.from_bytes(raw).headers, new)
    assert walk.unwalked == [] and walk.parts == []


def test_a_message_too_large_to_authenticate_still_loses_its_markup(
    resolver: StaticResolver,
    dkim_key,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    raw = sign((DATA / "xero_invoice.eml").read_bytes(), dkim_key[0])
    # What the filter says when the body passed max_message_bytes:
    out = run(raw, resolver, signer, truncated=True)
    assert out.verdict.skip is Skip.TOO_LARGE
    assert ("InboxPay-Verdict", "skipped; reason=too_large") in out.edits.append
    assert not any(name == "InboxPay-Card" for name, _ in out.edits.append)
    assert out.edits.body is not None and b"application/ld+json" not in out.edits.body


# --- repeated MIME fields that would hide an HTML part from the walk ------------------------


def test_a_part_whose_content_type_repeats_is_neutralised(
    resolver: StaticResolver,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    # We would read the first Content-Type (plain text); a reader taking the last sees HTML.
    raw = (
        b"From: Billing <billing@attacker.example>\r\nTo: ana@client.example\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n\r\n"
        + FULL.encode()
        + b"\r\n--b--\r\n"
    )
    out = run(raw, resolver, signer)
    assert out.verdict.action is Action.REMOVE
    body = out.edits.body
    assert body is not None and b"INV-666" not in body and NOTICE.encode() in body
    assert body.startswith(b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n")


def test_a_repeated_top_level_content_type_is_resolved_to_the_one_we_read(
    resolver: StaticResolver,
    signer,  # type: ignore[no-untyped-def]
) -> None:
    # A boundary that is not in the body hides the parts from us, not from a reader that
    # takes the second field: the second is deleted, so every reader sees what we saw.
    raw = (
        b'Content-Type: multipart/mixed; boundary="nowhere"\r\n'
        b"From: Billing <billing@attacker.example>\r\nTo: ana@client.example\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n" + FULL.encode() + b"\r\n--b--\r\n"
    )
    out = run(raw, resolver, signer)
    assert ("Content-Type", 2) in out.edits.delete
    assert ("Content-Type", 1) not in out.edits.delete
