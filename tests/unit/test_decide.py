"""decide(evidence, policy): every verdict and reason, without a mail server."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.dmarc import DmarcRecord
from inboxpay.auth.spf import SpfResult
from inboxpay.config import DEFAULT_PARTNERS, Partner
from inboxpay.invoice.model import Invoice
from inboxpay.invoice.scan import PaymentRequest
from inboxpay.milter.decide import Action, Policy, Reason, decide
from inboxpay.milter.facts import Evidence

XERO = DEFAULT_PARTNERS[0]
ACME = Partner("acme", "Acme", ("acme.example",), ("pay.acme.example",))
POLICY = Policy(partners=(XERO, ACME), orgs={"off.example": False, "on.off.example": True})

INVOICE = Invoice(
    kind="invoice",
    partner_name="Xero",
    merchant_name="Wide World Importers",
    merchant_account="ACC-1",
    number="INV-1",
    amount_minor=7000,
    currency="USD",
    amount="70.00",
    due=date(2027, 1, 15),
    url="https://in.xero.com/abc",
)


# The To/Cc addresses every signature below covers: each recipient the tests use.
ADDRESSED = (
    "bob@example.org",
    "a@off.example",
    "b@on.off.example",
    "c@example.org",
    "carol@off.example",
    "carol@sub.off.example",
)


def sig(domain: str, result: str = "pass", covers_body: bool = True) -> DkimResult:
    return DkimResult(domain, "s1", result, covers_body, "abcdefgh", "", ADDRESSED, True)


def spf(result: str = "pass", domain: str = "post.xero.com") -> SpfResult:
    return SpfResult(result, domain, "mailfrom", "")


GOOD = Evidence(
    from_addresses=("billing@post.xero.com",),
    from_fields=1,
    message_id="<m@post.xero.com>",
    recipients=("bob@example.org",),
    spf=spf(),
    spf_helo=None,
    dkim=(sig("post.xero.com"),),
    dmarc=None,
    dmarc_error=False,
    requests=(PaymentRequest("invoice", INVOICE),),
    internal=False,
    truncated=False,
)


def with_(**changes: object) -> Evidence:
    return dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]


def test_authenticated_partner_invoice_gets_a_card() -> None:
    v = decide(GOOD, POLICY)
    assert v.action is Action.CARD
    assert v.header == "card"
    assert v.partner == XERO and v.invoice == INVOICE
    assert v.dkim_domain == "post.xero.com"
    assert v.payers == ("bob@example.org",)


def test_mail_without_payment_markup_is_left_alone() -> None:
    v = decide(with_(requests=()), POLICY)
    assert v.action is Action.PASS and v.header is None


def test_internal_mail_is_passed_through_even_with_markup() -> None:
    assert decide(with_(internal=True, dkim=()), POLICY).action is Action.PASS


def test_mail_with_unread_mime_parts_and_no_request_found_says_so() -> None:
    v = decide(with_(requests=(), markup_complete=False), POLICY)
    assert v.action is Action.SKIP and v.header == "skipped; reason=too_complex"
    # A request found beside unread parts earns no card: what was not read could contradict it.
    v = decide(with_(markup_complete=False), POLICY)
    assert v.action is Action.SKIP and v.header == "skipped; reason=too_complex"


def test_markup_a_browser_may_read_differently_is_removed() -> None:
    v = decide(with_(suspect_markup=True), POLICY)
    assert v.action is Action.REMOVE and v.header == "removed; reason=ambiguous_markup"
    # Suspect HTML with no request our scanner could read is still not let through.
    v = decide(with_(requests=(), suspect_markup=True), POLICY)
    assert v.action is Action.REMOVE and v.header == "removed; reason=ambiguous_markup"


def test_truncated_message_is_skipped_without_card() -> None:
    v = decide(with_(truncated=True), POLICY)
    assert v.action is Action.SKIP and v.header == "skipped; reason=too_large"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"from_addresses": ("billing@post-xero.com",)}, Reason.NOT_PARTNER),
        ({"from_addresses": ("billing@xero.com.evil.example",)}, Reason.NOT_PARTNER),
        ({"dkim": ()}, Reason.DKIM_FAIL),
        ({"dkim": (sig("post.xero.com", "fail"),)}, Reason.DKIM_FAIL),
        ({"dkim": (sig("post.xero.com", covers_body=False),)}, Reason.DKIM_FAIL),
        ({"dkim": (sig("attacker.example"),)}, Reason.UNALIGNED),
        (
            {"from_fields": 2, "from_addresses": ("a@post.xero.com", "b@post.xero.com")},
            Reason.UNALIGNED,
        ),
        ({"from_addresses": ("a@post.xero.com", "b@evil.example")}, Reason.UNALIGNED),
        ({"spf": spf("fail")}, Reason.SPF_FAIL),
        ({"spf": spf("softfail")}, Reason.SPF_FAIL),
        ({"spf": None}, Reason.SPF_FAIL),
        (
            {"requests": (PaymentRequest("invoice", None, "amount is zero"),)},
            Reason.INVALID_INVOICE,
        ),
        (
            {
                "requests": (
                    PaymentRequest("invoice", INVOICE),
                    PaymentRequest("microdata", dataclasses.replace(INVOICE, amount_minor=1)),
                )
            },
            Reason.INVALID_INVOICE,
        ),
        (
            {
                "requests": (
                    PaymentRequest(
                        "invoice", dataclasses.replace(INVOICE, url="https://evil.example/")
                    ),
                )
            },
            Reason.URL_NOT_ALLOWED,
        ),
        (
            {
                "requests": (
                    PaymentRequest(
                        "invoice", dataclasses.replace(INVOICE, url="http://in.xero.com/a")
                    ),
                )
            },
            Reason.URL_NOT_ALLOWED,
        ),
        ({"recipients": ("carol@off.example",)}, Reason.ORG_DISABLED),
        ({"recipients": ("carol@sub.off.example",)}, Reason.ORG_DISABLED),
    ],
)
def test_failing_checks_remove_the_payment_request(
    changes: dict[str, object], reason: Reason
) -> None:
    v = decide(with_(**changes), POLICY)
    assert v.action is Action.REMOVE
    assert v.reason is reason
    assert v.header == f"removed; reason={reason.value}"


def test_relaxed_alignment_accepts_parent_domain_signature() -> None:
    v = decide(with_(dkim=(sig("xero.com"),)), POLICY)
    assert v.action is Action.CARD and v.dkim_domain == "xero.com"


def test_strict_alignment_from_dmarc_record_rejects_parent_domain_signature() -> None:
    strict = DmarcRecord("reject", "s", "r")
    v = decide(with_(dkim=(sig("xero.com"),), dmarc=strict), POLICY)
    assert v.reason is Reason.UNALIGNED


def test_strict_alignment_from_policy() -> None:
    policy = dataclasses.replace(POLICY, alignment="strict")
    assert decide(with_(dkim=(sig("xero.com"),)), policy).reason is Reason.UNALIGNED


def test_one_good_signature_among_bad_ones_is_enough() -> None:
    v = decide(
        with_(dkim=(sig("attacker.example"), sig("post.xero.com", "fail"), sig("post.xero.com"))),
        POLICY,
    )
    assert v.action is Action.CARD


def test_spf_pass_may_be_optional_by_policy() -> None:
    policy = dataclasses.replace(POLICY, require_spf_pass=False)
    assert decide(with_(spf=spf("fail")), policy).action is Action.CARD


def test_only_recipients_of_enabled_orgs_may_pay() -> None:
    v = decide(with_(recipients=("a@off.example", "b@on.off.example", "c@example.org")), POLICY)
    assert v.action is Action.CARD
    assert v.payers == ("b@on.off.example", "c@example.org")


def test_merchant_sending_directly_is_a_partner() -> None:
    invoice = dataclasses.replace(INVOICE, url="https://pay.acme.example/i/1")
    v = decide(
        with_(
            from_addresses=("sales@acme.example",),
            dkim=(sig("acme.example"),),
            spf=spf(domain="acme.example"),
            requests=(PaymentRequest("invoice", invoice),),
        ),
        POLICY,
    )
    assert v.action is Action.CARD and v.partner == ACME and v.spf_aligned


@pytest.mark.parametrize(
    "changes",
    [
        {"dkim": (sig("post.xero.com", "temperror"),)},
        {"dkim": (sig("post.xero.com", "fail"), sig("post.xero.com", "temperror"))},
        {"spf": spf("temperror")},
        {"dmarc_error": True},
    ],
)
def test_dns_failures_skip_without_touching_the_body(changes: dict[str, object]) -> None:
    v = decide(with_(**changes), POLICY)
    assert v.action is Action.SKIP
    assert v.header == "skipped; reason=temperror"


def test_truncated_message_is_skipped_even_without_visible_markup() -> None:
    v = decide(with_(truncated=True, requests=()), POLICY)
    assert v.header == "skipped; reason=too_large"
