"""Prometheus metrics of the milter: a registry of its own, served on ``[milter] metrics_listen``.

Verdicts and authentication results are counted once per message, from the
pipeline's :class:`Outcome` at end of message (:meth:`MilterMetrics.record`);
the callbacks only observe their own duration, and the resolver its queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from inboxpay.dns import CacheStats
from inboxpay.milter.decide import Action, Reason, Skip
from inboxpay.milter.pipeline import Outcome

#: The callbacks timed, as the milter protocol names its stages. Observed once per
#: message (envrcpt, header and body: all of the message's together); connect and helo
#: once per connection.
CALLBACKS = ("connect", "helo", "envfrom", "envrcpt", "header", "body", "eom")

# Most callbacks take microseconds; eom waits for DNS, up to [dns] message_budget.
_CALLBACK_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
)
_DNS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CacheCollector(Collector):
    """The resolver's own hit and miss counts, read at scrape time: no work per lookup."""

    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._stats()
        yield CounterMetricFamily(
            "inboxpay_milter_dns_cache_hits", "DNS lookups answered from the cache", stats.hits
        )
        yield CounterMetricFamily(
            "inboxpay_milter_dns_cache_misses", "DNS lookups sent to the name servers", stats.misses
        )


class MilterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "inboxpay_milter_messages", "Messages that reached end of message", registry=r
        )
        self.cards = Counter(
            "inboxpay_milter_cards_issued", "Payment requests stamped with a card", registry=r
        )
        self.removed = Counter(
            "inboxpay_milter_requests_removed",
            "Payment requests removed from the mail, by reason",
            ["reason"],
            registry=r,
        )
        self.skipped = Counter(
            "inboxpay_milter_requests_skipped",
            "Payment requests left undecided (no card, body untouched), by reason",
            ["reason"],
            registry=r,
        )
        self.failures = Counter(
            "inboxpay_milter_analysis_failures",
            "Messages whose analysis failed (delivered with only forged cards removed)",
            registry=r,
        )
        self.auth = Counter(
            "inboxpay_milter_auth_results",
            "Authentication results written to Authentication-Results",
            ["method", "result"],
            registry=r,
        )
        self.dns_query = Histogram(
            "inboxpay_milter_dns_query_seconds",
            "DNS queries sent to the name servers (cache misses), failures included",
            buckets=_DNS_BUCKETS,
            registry=r,
        )
        self.callback = Histogram(
            "inboxpay_milter_callback_seconds",
            "Time spent in the milter's own code per stage of a message",
            ["callback"],
            buckets=_CALLBACK_BUCKETS,
            registry=r,
        )
        ProcessCollector(registry=r)  # CPU, memory and descriptors of the milter process
        # Every series exists from the start (at 0), so rate() sees the first event.
        for reason in Reason:
            self.removed.labels(reason.value)
        for skip in Skip:
            self.skipped.labels(skip.value)
        # Bound once: a callback then pays a dict lookup and an observe, no label lookup.
        self.callbacks: Mapping[str, Histogram] = {
            name: self.callback.labels(name) for name in CALLBACKS
        }

    def record(self, outcome: Outcome) -> None:
        """Count one message from its outcome: verdict and authentication results."""
        self.messages.inc()
        verdict = outcome.verdict
        if verdict.action is Action.CARD:
            self.cards.inc()
        elif verdict.action is Action.REMOVE and verdict.reason is not None:
            self.removed.labels(verdict.reason.value).inc()
        elif verdict.action is Action.SKIP and verdict.skip is not None:
            self.skipped.labels(verdict.skip.value).inc()
        evidence = outcome.evidence
        if evidence is None:
            self.failures.inc()  # fail_safe: the analysis raised or ran out of time
            return
        if evidence.internal or not evidence.authenticated:
            return  # not checked, no Authentication-Results
        if evidence.spf is not None:
            self.auth.labels("spf", evidence.spf.result).inc()
        if evidence.spf_helo is not None:
            self.auth.labels("spf_helo", evidence.spf_helo.result).inc()
        for signature in evidence.dkim:
            self.auth.labels("dkim", signature.result).inc()
        if not evidence.dkim:
            self.auth.labels("dkim", "none").inc()
        if outcome.alignment is not None:
            self.auth.labels("dmarc", outcome.alignment.result).inc()

    def failed(self) -> None:
        """Count a message whose analysis raised."""
        self.messages.inc()
        self.failures.inc()

    def watch_cache(self, stats: Callable[[], CacheStats]) -> None:
        """Export the DNS cache's hits and misses; ``stats`` is called at each scrape."""
        self.registry.register(_CacheCollector(stats))
