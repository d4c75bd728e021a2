"""Run the milter: build the pipeline from configuration and hand it to libmilter."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping

import Milter

from inboxpay.card import CardSigner
from inboxpay.config import Config
from inboxpay.dns import BudgetedResolver, CachingResolver, static_record
from inboxpay.keys import kid_of, load_recipient_key, load_signing_key
from inboxpay.milter.analyze import Limits
from inboxpay.milter.decide import Policy
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.filter import InboxPayMilter
from inboxpay.milter.listener import serve
from inboxpay.milter.orgsync import OrgSync
from inboxpay.milter.pipeline import Outcome, Settings, process

_log = logging.getLogger(__name__)

NAME = "inboxpay"


class Runtime:
    """Shared by all connections: the DNS cache, keys and policy."""

    def __init__(self, config: Config) -> None:
        key = load_signing_key(config.signing.key_file)
        self.config = config
        self.resolver = CachingResolver(
            config.dns.nameservers,
            config.dns.port,
            config.dns.timeout,
            config.dns.cache_size,
            [static_record(*r) for r in config.dns.static],
        )
        self.settings = Settings(
            authserv_id=config.milter.authserv_id,
            signer=CardSigner(key, config.signing.kid or kid_of(key)),
            recipient_key=load_recipient_key(config.signing.recipient_key_file),
            card_ttl_seconds=config.milter.card_ttl_days * 86400,
            limits=Limits(
                max_dkim_signatures=config.milter.max_dkim_signatures,
                max_amount=config.policy.max_amount,
                spf_timeout=config.dns.message_budget,
            ),
            internal_networks=config.milter.internal_networks,
        )
        self.policy = Policy(
            partners=config.partners,
            orgs=dict(config.orgs),
            alignment=config.policy.alignment,
            require_spf_pass=config.policy.require_spf_pass,
        )

    def set_orgs(self, orgs: Mapping[str, bool]) -> None:
        # One attribute assignment: callbacks see the old policy or the new, never a mix.
        self.policy = dataclasses.replace(self.policy, orgs=dict(orgs))

    def process(self, facts: MessageFacts) -> Outcome:
        resolver = BudgetedResolver(self.resolver, self.config.dns.message_budget)
        return process(facts, resolver, self.policy, self.settings)


def run(config: Config) -> None:
    runtime = Runtime(config)
    sync = OrgSync(
        config.storage_url,
        config.path.parent,
        config.orgs,
        runtime.set_orgs,
        config.milter.org_refresh_seconds,
    )
    sync.refresh()  # settings made before start-up apply to the first message
    sync.start()
    Milter.factory = functools.partial(
        InboxPayMilter, runtime.process, config.milter.max_message_bytes
    )
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY)
    # Last resort only (eom catches everything): never TEMPFAIL mail for our own failure.
    Milter.set_exception_policy(Milter.CONTINUE)
    _log.info("milter listening", extra={"socket": config.milter.socket})
    serve(NAME, config.milter.socket, config.milter.timeout)
