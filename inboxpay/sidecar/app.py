"""``create_app(config)``: the sidecar's aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from inboxpay.card.keys import load_recipient_key
from inboxpay.config import Config
from inboxpay.processor.adapter import Processor
from inboxpay.processor.client import open_processor
from inboxpay.sidecar.auth import TokenVerifier, load_issuer_key
from inboxpay.sidecar.cardkeys import CardKeys
from inboxpay.sidecar.metered import MeteredProcessor
from inboxpay.sidecar.metrics import METRICS, Metrics
from inboxpay.sidecar.middleware import cors_middleware, error_middleware
from inboxpay.sidecar.orgs import OrgDirectory
from inboxpay.sidecar.paying import PayContext, PaymentService
from inboxpay.sidecar.routes import admin, cards, meta, pane, payments, wallet
from inboxpay.sidecar.state import CONFIG, SERVICES, Services
from inboxpay.sidecar.wallet import Wallet
from inboxpay.store.engine import open_store
from inboxpay.vault.envelope import Vault
from inboxpay.vault.keys import load_vault_keys

_log = logging.getLogger(__name__)


def token_verifier(config: Config) -> TokenVerifier:
    sc = config.sidecar
    return TokenVerifier(
        [(issuer, load_issuer_key(issuer)) for issuer in sc.issuers],
        sc.audience,
        sc.token_max_lifetime,
        sc.admin_subjects,
    )


def card_keys(config: Config) -> CardKeys:
    # The current key and the retired ones, re-read after a rotation (sidecar/cardkeys.py).
    return CardKeys(config.signing)


async def _services(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = await open_store(config.storage_url, config.path.parent)
    processors: dict[str, Processor] = {}
    reconciler: asyncio.Task[None] | None = None
    try:
        await store.migrate()
        for name, pc in config.processors.items():
            processors[name] = MeteredProcessor(await open_processor(pc), name, app[METRICS])
        verifier = card_keys(config)
        vault = Vault(load_vault_keys(config.vault_key_file))
        wallet_ = Wallet(store, vault, config.limits, app[METRICS])
        orgs = OrgDirectory(store, config.orgs)
        service = PaymentService(
            PayContext(
                store=store,
                wallet=wallet_,
                verifier=verifier,
                recipient_key=load_recipient_key(config.signing.recipient_key_file),
                orgs=orgs,
                partners={p.id: p for p in config.partners},
                processors=processors,
                limits=config.limits,
                reconcile_after=config.sidecar.reconcile_after,
                count_outcome=lambda status: app[METRICS].payments.labels(status).inc(),
            )
        )
        app[SERVICES] = Services(
            config=config,
            store=store,
            tokens=token_verifier(config),
            cards=verifier,
            recipient_key=load_recipient_key(config.signing.recipient_key_file),
            orgs=orgs,
            wallet=wallet_,
            payments=service,
        )
        reconciler = asyncio.create_task(_reconcile(service, config.sidecar.reconcile_after))
        yield
    finally:
        if reconciler is not None:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        for processor in processors.values():
            await processor.close()
        await store.close()


async def _reconcile(service: PaymentService, every: int) -> None:
    """Settle payments a timeout or a crash left open, by their processor key."""
    while True:
        await asyncio.sleep(max(1.0, every / 2))
        try:
            changed = await service.reconcile_once()
            if changed:
                _log.info("reconciler settled payments", extra={"count": changed})
        except Exception:  # noqa: BLE001 - keep reconciling; the next round retries
            _log.exception("reconciler round failed")


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.sidecar.max_body_bytes,
        middlewares=[cors_middleware(config.sidecar.webmail_origins), error_middleware()],
    )
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_services)
    for module in (meta, cards, wallet, payments, admin, pane):
        app.add_routes(module.routes)
    if config.sidecar.demo_maildir is not None:  # development only: docs/embedding.md
        from inboxpay.dev import demo

        app.add_routes(demo.routes)
    return app


def run(config: Config) -> None:
    web.run_app(
        create_app(config),
        host=config.sidecar.host,
        port=config.sidecar.port,
        access_log=None,
        print=None,
    )
