"""Prometheus metrics of one sidecar application (its own registry, so tests don't collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram


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


METRICS = web.AppKey("metrics", Metrics)
