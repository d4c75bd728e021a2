"""Mail without a payment request passes through untouched, even when broken."""

from __future__ import annotations

import pytest

from . import checks, rawmime
from .harness import Mta
from .messages import Invoice, malformed_mail, notice_mail
from .scenarios import XERO_FROM, forged_card, from_xero, signed_xero_notice
from .world import BOB

pytestmark = pytest.mark.e2e


def test_ordinary_mail_is_unchanged(mta: Mta) -> None:
    # No payment markup: not authenticated, nothing added ([milter] authentication_results).
    sent = signed_xero_notice(mta)
    d = from_xero(mta, sent)[0]
    checks.no_ar_of_ours(d)
    checks.assert_no_card(d)
    checks.assert_body_unchanged(sent, d)
    checks.assert_headers_kept(sent, d)
    added = checks.added_fields(sent, d)
    assert added == [], f"{checks.where(d)} fields added: {added}"


def test_unsigned_ordinary_mail_is_delivered_without_card(mta: Mta) -> None:
    sent = notice_mail(XERO_FROM)
    d = from_xero(mta, sent)[0]
    checks.no_ar_of_ours(d)
    checks.assert_no_card(d)
    checks.assert_body_unchanged(sent, d)


def test_forged_card_on_ordinary_mail_is_removed(mta: Mta) -> None:
    forged = [f"{checks.CARD}: {forged_card()}", f"{checks.VERDICT}: card"]
    sent = signed_xero_notice(mta, extra_headers=forged)
    d = from_xero(mta, sent)[0]
    checks.assert_no_card(d)
    verdicts = rawmime.values(d.raw, checks.VERDICT)
    assert verdicts == [], f"{checks.where(d)} forged verdict kept: {verdicts}"
    checks.assert_body_unchanged(sent, d)


def test_malformed_mime_is_delivered_without_card(mta: Mta) -> None:
    sent = mta.dkim["post.xero.test"].sign(malformed_mail(XERO_FROM, [BOB], Invoice()))
    d = from_xero(mta, sent)[0]
    checks.no_ar_of_ours(d)  # no HTML part the MIME structure shows: nothing to authenticate
    checks.assert_no_card(d)
