"""What the sidecar's handlers share, kept on the application under typed keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from inboxpay.config import Config
from inboxpay.sidecar.auth import Principal, TokenVerifier
from inboxpay.sidecar.cardkeys import CardKeys
from inboxpay.sidecar.errors import Forbidden
from inboxpay.sidecar.orgs import OrgDirectory
from inboxpay.sidecar.paying import PaymentService
from inboxpay.sidecar.wallet import Wallet
from inboxpay.store.api import Store


@dataclass
class Services:
    config: Config
    store: Store
    tokens: TokenVerifier
    cards: CardKeys  # verifies cards and serves the JWKS; reloads after a rotation
    recipient_key: bytes
    orgs: OrgDirectory
    wallet: Wallet
    payments: PaymentService


SERVICES = web.AppKey("services", Services)
CONFIG = web.AppKey("config", Config)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def user(request: web.Request) -> Principal:
    """The caller, from the bearer token; 401 when there is none or it is bad."""
    return services(request).tokens.verify(request.headers.get("Authorization"))


def admin(request: web.Request) -> Principal:
    principal = user(request)
    if not principal.admin:
        raise Forbidden("this endpoint needs an administrator's token", "not_admin")
    return principal
