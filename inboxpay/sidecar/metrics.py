"""Prometheus metrics of one sidecar application (its own registry, so tests don't collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

#: Vault operations the sidecar performs (rewrapping is `inboxpay keys rotate-vault`'s).
VAULT_OPS = ("seal", "open")


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Histogram(
            "inboxpay_sidecar_request_seconds",
            "Request latency by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.payments = Counter(
            "inboxpay_sidecar_payments_total",
            "Payments by outcome",
            ["status"],
            registry=self.registry,
        )
        self.vault = Counter(
            "inboxpay_sidecar_vault_operations",
            "Saved-card vault operations by result",
            ["op", "result"],
            registry=self.registry,
        )
        self.processor = Histogram(
            "inboxpay_sidecar_processor_seconds",
            "Calls to payment processors by processor, operation and outcome",
            ["processor", "operation", "outcome"],
            registry=self.registry,
        )
        for op in VAULT_OPS:  # at 0 from the start, so an error rate has a denominator
            for result in ("ok", "error"):
                self.vault.labels(op, result)


METRICS = web.AppKey("metrics", Metrics)
