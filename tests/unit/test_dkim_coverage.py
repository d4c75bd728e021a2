"""What a passing DKIM signature covers (To/Cc addresses, MIME fields) is worked out
only where a card could follow: parsing the covered recipients costs a quarter of a
verification, and mail without payment markup never needs it."""

from __future__ import annotations

from inboxpay.auth import dkim
from inboxpay.milter.decide import Action
from inboxpay.milter.pipeline import Outcome
from tests.support.pipeline import DATA, new_dkim_key, new_signer, run, sign, xero_resolver

PLAIN = (
    b"From: Xero <billing@post.xero.com>\nTo: Ana Muller <ana@client.example>\n"
    b"Subject: Your statement\nMIME-Version: 1.0\nContent-Type: text/plain\n\n"
    b"Nothing to pay today.\n"
)


def _run(raw: bytes, dkim_key: tuple[bytes, bytes]) -> Outcome:
    return run(raw, xero_resolver(dkim_key), new_signer(), authentication_results="all")


def test_verify_all_reads_the_coverage_only_when_asked() -> None:
    key = new_dkim_key()
    raw = sign(PLAIN, key[0])
    with_coverage = dkim.verify_all(raw, xero_resolver(key), 5)
    without = dkim.verify_all(raw, xero_resolver(key), 5, coverage=False)
    assert [r.result for r in with_coverage] == [r.result for r in without] == ["pass"]
    assert with_coverage[0].addressed == ("ana@client.example",)
    assert with_coverage[0].mime_signed
    # Read as empty: a card would be refused (recipient not addressed), never issued.
    assert without[0].addressed == ()
    assert not without[0].mime_signed


def test_with_all_mail_without_markup_is_authenticated_without_the_coverage() -> None:
    key = new_dkim_key()
    out = _run(sign(PLAIN, key[0]), key)
    assert out.evidence is not None and out.verdict.action is Action.PASS
    (signature,) = out.evidence.dkim
    assert signature.result == "pass"
    assert signature.addressed == ()


def test_with_all_an_invoice_still_reads_the_coverage_and_earns_its_card() -> None:
    key = new_dkim_key()
    out = _run(sign((DATA / "xero_invoice.eml").read_bytes(), key[0]), key)
    assert out.evidence is not None
    assert out.evidence.dkim[0].addressed == ("ana@client.example",)
    assert out.verdict.action is Action.CARD
