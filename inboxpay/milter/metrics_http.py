"""Serving a Prometheus registry over HTTP (``[milter] metrics_listen``).

Apart from :mod:`inboxpay.milter.metrics` so that the workers' supervisor, which serves
the added-up metrics and handles no mail, need not import the message path.
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import start_http_server

from inboxpay.errors import InboxPayError

_log = logging.getLogger(__name__)


class MetricsPortError(InboxPayError):
    """The metrics port could not be opened (taken, or an address this host lacks)."""


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve ``registry`` over HTTP on ``host:port`` from a daemon thread, until shutdown()."""
    try:
        server, _thread = start_http_server(port, host, registry=registry)
    except OSError as e:
        raise MetricsPortError(
            f"[milter] metrics_listen: cannot listen on {host}:{port}: {e.strerror or e}"
        ) from None
    _log.info("metrics listening", extra={"listen": f"{host}:{port}"})
    return server
