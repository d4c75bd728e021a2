"""The verdict: may this message carry a payment card? A pure function of evidence and policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from joserfc.jwk import RSAKey

from inboxpay import addresses, orgs
from inboxpay.auth.dmarc import evaluate
from inboxpay.auth.domains import within
from inboxpay.config import Partner
from inboxpay.invoice.model import Invoice
from inboxpay.invoice.signed import SignedRequest, SignedRequestRefused, check_signed
from inboxpay.milter.facts import Evidence


class Reason(StrEnum):
    """Why a payment request was removed; the token written to InboxPay-Verdict."""

    NOT_PARTNER = "not_partner"
    DKIM_FAIL = "dkim_fail"
    SPF_FAIL = "spf_fail"
    UNALIGNED = "unaligned"
    INVALID_INVOICE = "invalid_invoice"
    URL_NOT_ALLOWED = "url_not_allowed"
    ORG_DISABLED = "org_disabled"
    AMBIGUOUS_MARKUP = "ambiguous_markup"  # HTML a browser may read other than we do
    SPF_UNALIGNED = "spf_unaligned"  # SPF passed, for a domain not aligned with From
    AMBIGUOUS_MIME = "ambiguous_mime"  # a MIME field repeats, or the signature leaves it out
    RECIPIENT_NOT_ADDRESSED = "recipient_not_addressed"  # no recipient is in the signed To/Cc
    # A SignedActionRequest (dynamic sender) that the partner's keys do not vouch for:
    UNSIGNED_PARTNER = "unsigned_partner"  # the partner has no signed_request_keys
    BAD_REQUEST_SIGNATURE = "bad_request_signature"
    REQUEST_SENDER_MISMATCH = "request_sender_mismatch"  # its sender is not the From address
    REQUEST_EXPIRED = "request_expired"  # its iat is older than signed_request_max_age
    INTERNAL_ERROR = "internal_error"  # the analysis failed or ran out of time (fail_safe)


class Skip(StrEnum):
    """Why a payment request was neither carded nor removed (the mail is left unchanged)."""

    TOO_LARGE = "too_large"
    TOO_COMPLEX = "too_complex"  # MIME nesting or part count past what is examined
    TEMPERROR = "temperror"


class Action(StrEnum):
    PASS = "pass"  # no payment markup (or internal mail): nothing to decide
    CARD = "card"  # stamp a card
    REMOVE = "remove"  # delete the payment request from the HTML
    SKIP = "skip"  # could not be decided (too large, DNS failure): no card, body untouched


@dataclass(frozen=True)
class Policy:
    partners: tuple[Partner, ...]
    orgs: Mapping[str, bool] = field(default_factory=dict)
    alignment: str = "relaxed"  # unless the sender's DMARC record asks for strict
    require_spf_pass: bool = True
    # Partner id -> the public keys its SignedActionRequests must verify with.
    request_keys: Mapping[str, tuple[RSAKey, ...]] = field(default_factory=dict)
    signed_request_max_age: int = 5 * 86400

    def pay_enabled(self, recipient: str) -> bool:
        return orgs.pay_enabled(self.orgs, recipient)


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: Reason | None = None
    partner: Partner | None = None
    invoice: Invoice | None = None
    dkim_domain: str = ""
    spf_aligned: bool = False
    payers: tuple[str, ...] = ()  # recipients allowed to pay: listed in the card
    skip: Skip | None = None

    @property
    def header(self) -> str | None:
        """The InboxPay-Verdict value, or None when the message had no payment request."""
        if self.action is Action.CARD:
            return "card"
        if self.action is Action.REMOVE and self.reason is not None:
            return f"removed; reason={self.reason.value}"
        if self.action is Action.SKIP and self.skip is not None:
            return f"skipped; reason={self.skip.value}"
        return None


def _removed(reason: Reason, partner: Partner | None = None) -> Verdict:
    return Verdict(Action.REMOVE, reason, partner)


def find_partner(domain: str, partners: tuple[Partner, ...]) -> Partner | None:
    for partner in partners:
        if any(within(domain, d) for d in partner.sender_domains):
            return partner
    return None


def url_allowed(url: str, partner: Partner) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    return parts.scheme == "https" and host in partner.invoice_url_hosts and not parts.username


def _signed_refusal(
    signed: SignedRequest, partner: Partner, evidence: Evidence, policy: Policy
) -> Reason | None:
    """Why a SignedActionRequest earns no card, or None when its partner signed it."""
    keys = policy.request_keys.get(partner.id, ())
    if not keys:
        return Reason.UNSIGNED_PARTNER  # dynamic senders need the partner's public key
    try:
        check_signed(
            signed,
            keys,
            evidence.from_addresses[0],
            evidence.received_at,
            policy.signed_request_max_age,
        )
    except SignedRequestRefused as e:
        return Reason(e.reason)
    return None


def decide(evidence: Evidence, policy: Policy) -> Verdict:
    """Card, removal (with the first failing check as reason), or nothing to do."""
    if evidence.internal:
        return Verdict(Action.PASS)
    # What was not read cannot earn a card; the pipeline neutralises what could hold one.
    if evidence.truncated:
        return Verdict(Action.SKIP, skip=Skip.TOO_LARGE)
    if not evidence.markup_complete:
        return Verdict(Action.SKIP, skip=Skip.TOO_COMPLEX)
    if not evidence.requests and not evidence.suspect_markup:
        return Verdict(Action.PASS)
    if evidence.from_fields != 1 or len(evidence.from_addresses) != 1:
        return _removed(Reason.UNALIGNED)  # RFC 7489 6.6.1: no single author to align with
    from_domain = evidence.from_domain
    partner = find_partner(from_domain, policy.partners)
    if partner is None:
        return _removed(Reason.NOT_PARTNER)

    # A DNS failure decides nothing: the mail goes on unchanged, without a card.
    if not any(s.result == "pass" and s.covers_body for s in evidence.dkim):
        if any(s.result == "temperror" for s in evidence.dkim):
            return Verdict(Action.SKIP, skip=Skip.TEMPERROR)
        return _removed(Reason.DKIM_FAIL, partner)
    if evidence.dmarc_error:
        return Verdict(Action.SKIP, skip=Skip.TEMPERROR)  # alignment mode unknown
    alignment = evaluate(from_domain, evidence.dkim, evidence.spf, evidence.dmarc, policy.alignment)
    signature = alignment.signature
    if signature is None:
        return _removed(Reason.UNALIGNED, partner)
    spf = evidence.spf
    if policy.require_spf_pass and (spf is None or spf.result != "pass"):
        if spf is not None and spf.result == "temperror":
            return Verdict(Action.SKIP, skip=Skip.TEMPERROR)
        return _removed(Reason.SPF_FAIL, partner)
    # A partner's signed mail re-sent from the attacker's own SPF-passing domain (replay).
    if policy.require_spf_pass and not alignment.spf_aligned:
        return _removed(Reason.SPF_UNALIGNED, partner)
    # The MIME structure we read must be the one the partner signed (RFC 6376 signs the
    # bottom instance of a field; we, and some readers, take the top one).
    if evidence.repeated_mime_fields or not signature.mime_signed:
        return _removed(Reason.AMBIGUOUS_MIME, partner)

    if evidence.suspect_markup:
        return _removed(Reason.AMBIGUOUS_MARKUP, partner)
    for request in evidence.requests:
        if request.signed is not None:
            refused = _signed_refusal(request.signed, partner, evidence, policy)
            if refused is not None:
                return _removed(refused, partner)
    parsed = [r.invoice for r in evidence.requests if r.invoice is not None]
    if len(parsed) != len(evidence.requests):
        return _removed(Reason.INVALID_INVOICE, partner)
    # The same invoice may come twice (JSON-LD and microdata); two different ones is ambiguous.
    if len({dataclasses.replace(i, kind="") for i in parsed}) != 1:
        return _removed(Reason.INVALID_INVOICE, partner)
    invoice = parsed[0]
    if not url_allowed(invoice.url, partner):
        return _removed(Reason.URL_NOT_ALLOWED, partner)

    # Only whom the partner addressed may pay: a replayed mail reaches others.
    addressed = set(signature.addressed)
    recipients = [r for r in evidence.recipients if addresses.normalize(r) in addressed]
    if not recipients:
        return _removed(Reason.RECIPIENT_NOT_ADDRESSED, partner)
    payers = tuple(r for r in recipients if policy.pay_enabled(r))
    if not payers:
        return _removed(Reason.ORG_DISABLED, partner)
    return Verdict(
        Action.CARD, None, partner, invoice, alignment.dkim_domain, alignment.spf_aligned, payers
    )
