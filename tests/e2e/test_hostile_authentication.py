"""Hostile mail, authentication family, through real Postfix: a card vouches only for what
the partner signed, to whom it addressed it, from where it sent it.

Issue 10 items 4a, 6, 7, 8, 9 and 11 (the unit tests in tests/unit/ go into the detail).
"""

from __future__ import annotations

import authres
import dkim
import pytest

from inboxpay.card.header import recipient_hash

from . import checks, rawmime
from .harness import Mta
from .mail import Delivery
from .messages import Invoice, headers, html_part, invoice_mail, message, multipart, text_part
from .scenarios import XERO_BOUNCE, XERO_FROM, from_xero, signed_xero_invoice
from .world import ATTACKER_MX, BOB, CAROL, DAVE, SIGNED_HEADERS, XERO_MX

pytestmark = pytest.mark.e2e


def results(d: Delivery) -> list[authres.core.AuthenticationResult]:
    """Our Authentication-Results, parsed by authres (the parse is part of the check)."""
    return list(authres.all_features().parse_value(checks.our_ar(d)).results)


def body_of(d: Delivery) -> bytes:
    return rawmime.split(d.raw)[1]


# --- item 4a: one bad tag costs only its own signature --------------------------------------


def test_a_signature_with_an_empty_l_tag_is_a_permerror_beside_a_good_one(mta: Mta) -> None:
    good = signed_xero_invoice(mta)
    signature = good[: good.index(b"\r\nFrom:") + 2]
    bad = signature.replace(b"v=1;", b"v=1; l=;", 1)  # dkimpy: int(b"") raises ValueError
    assert bad != signature
    d = from_xero(mta, bad + good)[0]
    checks.card_claims(d, mta.card_keys.verifier)
    assert [r.result for r in results(d) if r.method == "dkim"] == ["permerror", "pass"]


# --- item 6: replay of a genuine partner mail ---------------------------------------------


def test_a_replayed_partner_invoice_gets_no_card(mta: Mta) -> None:
    # DAVE invoiced himself through the partner, then re-sends the signed mail from his
    # own server, whose SPF passes for his own domain, to other people.
    sent = signed_xero_invoice(mta, to=[DAVE])
    for d in mta.deliver(sent, ATTACKER_MX, "bounce@attacker.test", [BOB, CAROL]):
        assert [r.result for r in results(d) if r.method in ("dkim", "spf")][:2] == [
            "pass",
            "pass",
        ], checks.where(d)
        checks.assert_removed(d, "spf_unaligned")
        checks.assert_markup_removed(sent, d)


def test_a_to_field_added_above_the_signed_one_addresses_no_one(mta: Mta) -> None:
    # Even from the partner's own host: DKIM covers the bottom To, which is DAVE's.
    sent = f"To: {BOB}\r\n".encode() + signed_xero_invoice(mta, to=[DAVE])
    d = from_xero(mta, sent, rcpt_to=[BOB])[0]
    checks.assert_removed(d, "recipient_not_addressed")
    checks.assert_markup_removed(sent, d)


def test_a_genuine_invoice_cards_only_the_recipients_it_addresses(mta: Mta) -> None:
    sent = signed_xero_invoice(mta, to=[BOB])
    key = mta.card_keys.recipient_key
    for d in from_xero(mta, sent, rcpt_to=[BOB, CAROL]):  # CAROL as a Bcc
        hashes = checks.recipient_hashes(checks.card_claims(d, mta.card_keys.verifier))
        assert hashes == [recipient_hash(key, BOB)], checks.where(d)


# --- item 7: a Content-Type above the signed one ------------------------------------------


def test_a_content_type_prepended_above_the_signed_one_is_ambiguous(mta: Mta) -> None:
    # The partner quotes the attacker's notes in the plain text; under the attacker's
    # boundary those notes are an HTML part with another invoice.
    evil = Invoice(number="INV-666", amount="9999.00", url="https://in.xero.test/view/evil")
    notes = (
        b"Notes from your supplier:\r\n--evil\r\nContent-Type: text/html\r\n\r\n"
        + evil.script().encode()
        + b"\r\n--evil--\r\n"
    )
    html = b"<html><head>" + Invoice().script().encode() + b"</head><body>Hi</body></html>"
    body = multipart("mixed", [text_part(notes), html_part(html)])
    mail = message(headers(XERO_FROM, [BOB], "Invoice INV-0042"), body)
    sent = b'Content-Type: multipart/mixed; boundary="evil"\r\n' + mta.dkim["post.xero.test"].sign(
        mail
    )
    d = from_xero(mta, sent)[0]
    assert [r.result for r in results(d) if r.method == "dkim"] == ["pass"]
    checks.assert_removed(d, "ambiguous_mime")
    assert b"9999.00" not in body_of(d), checks.where(d)


# --- item 8: rsa-sha1 ---------------------------------------------------------------------


def test_an_rsa_sha1_signature_is_policy_not_pass(mta: Mta) -> None:
    key = mta.dkim["post.xero.test"]
    mail = invoice_mail(Invoice(), XERO_FROM, [BOB])
    signature = dkim.sign(
        mail,
        key.selector.encode(),
        key.domain.encode(),
        key.private_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=SIGNED_HEADERS,
        signature_algorithm=b"rsa-sha1",
    )
    sent = bytes(signature) + mail
    d = from_xero(mta, sent)[0]
    (sig,) = [r for r in results(d) if r.method == "dkim"]
    assert (sig.result, sig.header_d) == ("policy", "post.xero.test"), checks.our_ar(d)
    assert "rsa-sha1" in str(sig.reason)
    checks.assert_removed(d, "dkim_fail")
    checks.assert_markup_removed(sent, d)


# --- item 9: an "@" inside a quoted local part of MAIL FROM --------------------------------


def test_mail_from_with_a_quoted_at_checks_the_right_domain(mta: Mta) -> None:
    sent = signed_xero_invoice(mta)
    d = mta.deliver_one(sent, XERO_MX, '"a@b"@post.xero.test', BOB)
    spf = [(r.result, r.smtp_mailfrom) for r in results(d) if r.method == "spf"]
    assert spf[0] == ("pass", "post.xero.test"), checks.our_ar(d)
    checks.card_claims(d, mta.card_keys.verifier)


# --- item 11: several From addresses ------------------------------------------------------


def test_several_authors_get_one_dmarc_result_each(mta: Mta) -> None:
    sent = b"From: Payments <pay@attacker.test>\r\n" + signed_xero_invoice(mta)
    d = from_xero(mta, sent)[0]
    # No single author: removed before any DNS, so no results of ours (the per-author
    # dmarc= results with authentication_results = "all": tests/unit).
    checks.no_ar_of_ours(d)
    checks.assert_removed(d, "unaligned")
    checks.assert_markup_removed(sent, d)


def test_a_genuine_invoice_still_gets_its_card(mta: Mta) -> None:
    d = mta.deliver_one(signed_xero_invoice(mta), XERO_MX, XERO_BOUNCE, BOB)
    claims = checks.card_claims(d, mta.card_keys.verifier)
    assert claims["auth"]["spf_aligned"] is True, claims
