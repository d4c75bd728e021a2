"""One message, start to finish: facts -> evidence -> verdict -> edits.

The protocol layer (:mod:`inboxpay.milter.filter`) records facts and applies the
edits; everything between is here, runnable without a mail server.

The path never fails open: an exception anywhere in it, or a message that uses up its
CPU deadline, ends in :func:`fail_safe`, which still deletes forged headers, neutralises
every HTML part that could hold a payment request and says ``reason=internal_error``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from inboxpay.auth import dmarc, results
from inboxpay.auth.dmarc import Alignment
from inboxpay.card.header import HEADER as CARD_HEADER
from inboxpay.card.header import VERDICT_HEADER, CardSigner, fold
from inboxpay.deadline import DeadlineExceeded, cpu_deadline
from inboxpay.dns import Resolver
from inboxpay.invoice import removal
from inboxpay.invoice.scan import MarkupScan, scan
from inboxpay.message import RawMessage
from inboxpay.milter import stamp
from inboxpay.milter.analyze import Limits, Network, analyze
from inboxpay.milter.decide import Action, Policy, Reason, Skip, Verdict, decide
from inboxpay.milter.edits import Edits, deletions, mime_duplicates
from inboxpay.milter.facts import Evidence, MessageFacts

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the pipeline needs from configuration and key files."""

    authserv_id: str
    signer: CardSigner
    recipient_key: bytes
    card_ttl_seconds: int
    limits: Limits = field(default_factory=Limits)
    internal_networks: tuple[Network, ...] = field(default=())
    cpu_deadline: float = 5.0  # seconds of CPU one message may use before fail_safe
    # "payment": authenticate, and write Authentication-Results, only for mail that could
    # earn a card; "all": for every message not internal.
    authentication_results: str = "payment"


@dataclass(frozen=True)
class Outcome:
    evidence: Evidence | None  # None when the analysis failed (fail_safe)
    verdict: Verdict
    edits: Edits
    alignment: Alignment | None = None  # the dmarc= result written; None for internal mail


# Skips that leave HTML unread: what could not be read is neutralised, and no card issued.
_UNREAD = frozenset({Skip.TOO_LARGE, Skip.TOO_COMPLEX})


def process(facts: MessageFacts, resolver: Resolver, policy: Policy, settings: Settings) -> Outcome:
    """The outcome for one message; never raises (see fail_safe)."""
    try:
        with cpu_deadline(settings.cpu_deadline):
            return _process(facts, resolver, policy, settings)
    except DeadlineExceeded:
        _log.warning("message used up its CPU deadline of %.1f s", settings.cpu_deadline)
    except Exception:  # noqa: BLE001 - the fail-safe path below is the handling
        _log.exception("analysis failed")
    return fail_safe(facts.message, settings.authserv_id)


def fail_safe(message: RawMessage, authserv_id: str) -> Outcome:
    """Forged headers deleted, every HTML part that could hold markup neutralised, no card.

    It reads no HTML and no JSON: it only locates parts (linear in the body) and looks
    for the two markers without which no payment markup exists.
    """
    verdict = Verdict(Action.REMOVE, Reason.INTERNAL_ERROR)
    try:
        body = removal.without_markup(message.body, scan(message, read=False))
    except Exception:  # noqa: BLE001 - even locating failed: remove everything
        _log.exception("could not locate HTML parts; the body is replaced by a notice")
        body = removal.NOTICE.encode("ascii") + b"\r\n"
    assert verdict.header is not None
    edits = Edits(
        delete=deletions(message, authserv_id) + mime_duplicates(message),
        append=((VERDICT_HEADER, verdict.header),),
        body=body if body != message.body else None,
    )
    return Outcome(None, verdict, edits)


def _verdict_edits(
    message: RawMessage, verdict: Verdict, markup: MarkupScan
) -> tuple[list[tuple[str, str]], bytes | None]:
    """The verdict header and, for a removal or unread HTML, the body without the markup."""
    append = [] if verdict.header is None else [(VERDICT_HEADER, verdict.header)]
    body = None
    if verdict.action is Action.REMOVE or verdict.skip in _UNREAD:
        body = removal.without_markup(message.body, markup)
    return append, body if body != message.body else None


def _process(
    facts: MessageFacts, resolver: Resolver, policy: Policy, settings: Settings
) -> Outcome:
    every = settings.authentication_results == "all"
    evidence, markup = analyze(
        facts,
        resolver,
        settings.internal_networks,
        settings.limits,
        None if every else policy.partners,
    )
    verdict = decide(evidence, policy)
    message = facts.message
    if evidence.internal:
        # Trusted senders pass untouched, but only this milter may write a card, and only
        # it may speak for its authserv-id (RFC 8601 5): forged results go on every path.
        return Outcome(evidence, verdict, Edits(delete=deletions(message, settings.authserv_id)))
    delete = deletions(message, settings.authserv_id) + mime_duplicates(message)
    append, body = _verdict_edits(message, verdict, markup)
    if not evidence.authenticated:
        # Nothing here could earn a card (no markup, or not from a partner: decided before
        # any DNS); forged fields still go, the verdict still applies, no results of ours.
        if verdict.action is Action.CARD:
            raise AssertionError("a card without authentication")  # fail_safe, never a card
        return Outcome(evidence, verdict, Edits(delete=delete, append=tuple(append), body=body))

    alignment = dmarc.evaluate(
        evidence.from_domain, evidence.dkim, evidence.spf, evidence.dmarc, policy.alignment
    )
    if evidence.dmarc_error:
        alignment = dataclasses.replace(alignment, result="temperror")
    ar = results.build(
        settings.authserv_id,
        evidence.spf,
        evidence.spf_helo,
        evidence.dkim,
        alignment,
        evidence.from_domain,
        # RFC 7489 6.6.1: several authors, one dmarc= result for each of their domains.
        dmarc.evaluate_authors(evidence.authors, evidence.dkim, evidence.spf, policy.alignment),
    )
    if verdict.action is Action.CARD:
        claims = stamp.claims(
            verdict,
            evidence,
            settings.recipient_key,
            settings.authserv_id,
            settings.card_ttl_seconds,
        )
        append.append((CARD_HEADER, fold(settings.signer.sign(claims))))
    edits = Edits(delete=delete, insert_top=((results.NAME, ar),), append=tuple(append), body=body)
    return Outcome(evidence, verdict, edits, alignment)
