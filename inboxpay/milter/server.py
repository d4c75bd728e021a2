"""Run the milter: build the pipeline from configuration and hand it to libmilter."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import Milter
from joserfc.jwk import RSAKey

from inboxpay.card.header import CardSigner
from inboxpay.card.keys import kid_of, load_recipient_key, load_signing_key
from inboxpay.config import Config, Partner
from inboxpay.dns import BudgetedResolver, CachingResolver, static_record
from inboxpay.invoice.request_keys import load_request_keys
from inboxpay.milter.analyze import Limits
from inboxpay.milter.decide import Policy
from inboxpay.milter.facts import MessageFacts
from inboxpay.milter.filter import InboxPayMilter
from inboxpay.milter.listener import serve
from inboxpay.milter.metrics import MilterMetrics
from inboxpay.milter.metrics_http import serve as serve_metrics
from inboxpay.milter.orgsync import OrgSync
from inboxpay.milter.pipeline import Outcome, Settings, process
from inboxpay.milter.reload import Reloader, Stamps

_log = logging.getLogger(__name__)

NAME = "inboxpay"


@dataclass(frozen=True)
class Loaded:
    """What one reading of the config and key files gives the message path."""

    config: Config
    settings: Settings
    policy: Policy


def build(config: Config, stored_orgs: Mapping[str, bool]) -> Loaded:
    """Read the key files ``config`` names; raises ConfigError. The store's org switches
    override the config's ``[orgs]``."""
    key = load_signing_key(config.signing.key_file)
    settings = Settings(
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
        cpu_deadline=config.milter.cpu_deadline,
        authentication_results=config.milter.authentication_results,
    )
    policy = Policy(
        partners=config.partners,
        orgs=dict(config.orgs) | dict(stored_orgs),
        alignment=config.policy.alignment,
        require_spf_pass=config.policy.require_spf_pass,
        request_keys=request_keys(config.partners),
        signed_request_max_age=config.policy.signed_request_max_age,
    )
    return Loaded(config, settings, policy)


def request_keys(partners: tuple[Partner, ...]) -> dict[str, tuple[RSAKey, ...]]:
    """Each partner's keys for signed action requests; raises ConfigError naming the file."""
    keys: dict[str, tuple[RSAKey, ...]] = {}
    for partner in partners:
        for path in partner.signed_request_keys:
            where = f"[[partners]] {partner.id} signed_request_keys"
            keys[partner.id] = (*keys.get(partner.id, ()), *load_request_keys(path, where))
    return keys


class Runtime:
    """Shared by all connections: the DNS cache, and the settings, keys and policy in force.

    ``loaded`` is replaced whole, by one attribute assignment, when the store's org
    switches change (:meth:`set_orgs`) or the config is reloaded (:meth:`reload`, from
    milter/reload.py): a message sees the old settings or the new, never a mix.
    """

    def __init__(self, config: Config) -> None:
        self.loaded = build(config, {})
        self._stored_orgs: dict[str, bool] = {}
        self._lock = threading.Lock()  # writers only (org sync, reload); readers never wait
        self.resolver = CachingResolver(
            config.dns.nameservers,
            config.dns.port,
            config.dns.timeout,
            config.dns.cache_size,
            [static_record(*r) for r in config.dns.static],
        )

    @property
    def config(self) -> Config:
        return self.loaded.config

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def policy(self) -> Policy:
        return self.loaded.policy

    def set_orgs(self, orgs: Mapping[str, bool]) -> None:
        """The store's org switches (OrgSync), which override the config's ``[orgs]``."""
        with self._lock:
            self._stored_orgs = dict(orgs)
            loaded = self.loaded
            merged = dict(loaded.config.orgs) | self._stored_orgs
            self.loaded = dataclasses.replace(
                loaded, policy=dataclasses.replace(loaded.policy, orgs=merged)
            )

    def reload(self, config: Config) -> None:
        """Put a re-read config and its key files in force; on ConfigError the old stay."""
        with self._lock:
            old = self.loaded.settings.signer.kid
            self.loaded = build(config, self._stored_orgs)
        _log.info(
            "configuration reloaded",
            extra={"kid": self.loaded.settings.signer.kid, "previous_kid": old},
        )

    def process(self, facts: MessageFacts) -> Outcome:
        loaded = self.loaded  # read once: one message, one configuration
        resolver = BudgetedResolver(self.resolver, loaded.config.dns.message_budget)
        return process(facts, resolver, loaded.policy, loaded.settings)


def start_worker(config: Config, seen: Stamps, metrics: MilterMetrics) -> None:
    """Everything one serving process needs besides libmilter's socket: the runtime, its
    org sync and reloader threads, and the pymilter factory."""
    runtime = Runtime(config)
    reloader = Reloader(
        lambda: runtime.config, runtime.reload, config.milter.org_refresh_seconds, seen
    )
    # A worker started after a change (a restarted one) takes it before its first message.
    reloader.check()
    runtime.resolver.observe_query = metrics.dns_query.observe
    metrics.watch_cache(lambda: runtime.resolver.stats)
    sync = OrgSync(
        config.storage_url,
        config.path.parent,
        {},  # the store's switches only: the runtime adds [orgs] from the config in force
        runtime.set_orgs,
        config.milter.org_refresh_seconds,
    )
    sync.refresh()  # settings made before start-up apply to the first message
    sync.start()
    # Config and key-file changes (rotate-signing, partners add) apply without a restart.
    reloader.start()
    Milter.factory = functools.partial(
        InboxPayMilter, runtime.process, config.milter.max_message_bytes, metrics
    )
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY)
    # Last resort only (eom catches everything): never TEMPFAIL mail for our own failure.
    Milter.set_exception_policy(Milter.CONTINUE)


def serve_alone(config: Config, seen: Stamps) -> None:
    """One process handles all mail: serve until libmilter stops."""
    metrics = MilterMetrics()
    if config.milter.metrics_listen is not None:
        # Before anything else starts: a taken port stops start-up with one line.
        serve_metrics(metrics.registry, *config.milter.metrics_listen)
    start_worker(config, seen, metrics)
    _log.info("milter listening", extra={"socket": config.milter.socket})
    serve(NAME, config.milter.socket, config.milter.timeout)
