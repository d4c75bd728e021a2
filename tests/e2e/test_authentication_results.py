"""Our Authentication-Results header: one, on top, and no forged ones under our name."""

from __future__ import annotations

import pytest

from . import checks, rawmime
from .harness import Mta
from .scenarios import from_xero, signed_xero_invoice, signed_xero_notice

pytestmark = pytest.mark.e2e


def test_one_authentication_results_on_top(mta: Mta) -> None:
    # Only mail that could earn a card is authenticated ([milter] authentication_results).
    d = from_xero(mta, signed_xero_invoice(mta))[0]
    value = checks.our_ar(d)
    assert "spf=pass" in value, f"{checks.where(d)} {value}"
    assert "dkim=pass" in value, f"{checks.where(d)} {value}"


def test_inbound_results_claiming_our_id_are_removed(mta: Mta) -> None:
    forged = [
        "Authentication-Results: mx.test.example; dkim=pass header.d=forged-1.invalid",
        "Authentication-Results: MX.Test.Example 1; dmarc=pass header.from=forged-2.invalid",
        "Authentication-Results: relay.mx.test.example; dkim=pass header.d=forged-3.invalid",
    ]
    foreign = "Authentication-Results: other.example; spf=pass smtp.mailfrom=post.xero.test"
    sent = signed_xero_notice(mta, extra_headers=[*forged, foreign])
    d = from_xero(mta, sent)[0]
    checks.no_ar_of_ours(d)  # a notice: not authenticated, forged results still removed
    results = rawmime.values(d.raw, checks.AR)
    left = [r for r in results if "forged-" in r]
    assert left == [], f"{checks.where(d)} forged results under our name kept: {left}"
    assert foreign.split(": ", 1)[1] in results, f"{checks.where(d)} foreign A-R removed"
