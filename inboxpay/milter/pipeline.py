"""One message, start to finish: facts -> evidence -> verdict -> edits.

The protocol layer (:mod:`inboxpay.milter.filter`) records facts and applies the
edits; everything between is here, runnable without a mail server.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from inboxpay.auth import dmarc, results
from inboxpay.auth.dmarc import Alignment
from inboxpay.card import HEADER as CARD_HEADER
from inboxpay.card import VERDICT_HEADER, CardSigner, fold
from inboxpay.dns import Resolver
from inboxpay.invoice.scan import strip
from inboxpay.milter import stamp
from inboxpay.milter.analyze import Limits, Network, analyze
from inboxpay.milter.decide import Action, Policy, Verdict, decide
from inboxpay.milter.edits import Edits, deletions
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


@dataclass(frozen=True)
class Outcome:
    evidence: Evidence
    verdict: Verdict
    edits: Edits
    alignment: Alignment | None = None  # the dmarc= result written; None for internal mail


def process(facts: MessageFacts, resolver: Resolver, policy: Policy, settings: Settings) -> Outcome:
    evidence, markup = analyze(facts, resolver, settings.internal_networks, settings.limits)
    verdict = decide(evidence, policy)
    if evidence.internal:
        # Trusted senders pass untouched, but only this milter may write a card.
        return Outcome(evidence, verdict, Edits(delete=deletions(facts.message, None)))

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
    )
    append: list[tuple[str, str]] = []
    if verdict.header is not None:
        append.append((VERDICT_HEADER, verdict.header))
    body = None
    if verdict.action is Action.CARD:
        claims = stamp.claims(
            verdict,
            evidence,
            settings.recipient_key,
            settings.authserv_id,
            settings.card_ttl_seconds,
        )
        append.append((CARD_HEADER, fold(settings.signer.sign(claims))))
    elif verdict.action is Action.REMOVE:
        body = strip(facts.message.body, markup)
    edits = Edits(
        delete=deletions(facts.message, settings.authserv_id),
        insert_top=((results.NAME, ar),),
        append=tuple(append),
        body=body if body != facts.message.body else None,
    )
    return Outcome(evidence, verdict, edits, alignment)
