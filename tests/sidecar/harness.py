"""One sidecar test environment: a config written by ``inboxpay init`` (edited), its store,
a sandbox processor, cards signed as the milter signs them, and user tokens.

``Env.sidecar()`` runs the real application (``create_app``) on a real loopback socket;
``Api`` is a small HTTP client for it (and for sidecar processes).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from store.pg import free_port

from inboxpay import config as config_module
from inboxpay.card.keys import load_recipient_key
from inboxpay.config import Config
from inboxpay.dev.init import init
from inboxpay.sidecar.app import create_app
from inboxpay.sidecar.auth import load_issuer_key, mint
from inboxpay.sidecar.state import SERVICES, Services
from inboxpay.store.api import Store
from inboxpay.store.engine import open_store
from tests.support.cards import sign_card
from tests.support.sandbox import Sandbox

from . import toml
from .procs import Sidecar

ORIGIN = "https://mail.example.com"
ALICE = "alice@example.com"
BOB = "bob@example.com"
MALLORY = "mallory@example.net"
ADMIN = "admin@localhost"

NEXT_YEAR = datetime.date.today().year + 3
#: The security code the sandbox accepts; 000 is its "incorrect" code.
GOOD_CODE = "731"
WRONG_CODE = "000"

#: Sandbox test cards (see inboxpay/processor/sandbox/cards.py).
VISA_OK = "4242424242424242"
MC_OK = "5555555555554444"
DECLINE = "4000000000000002"
NO_FUNDS = "4000000000009995"
THREE_DS = "4000002500003155"
TEST_NUMBERS = (VISA_OK, MC_OK, DECLINE, NO_FUNDS, THREE_DS)

#: The holder name on saved cards; the billing profile uses another name on purpose, so
#: that the leak scan can tell the sealed holder name apart from the (clear) profile.
HOLDER = "Augusta Ada King-Noel"
PROFILE_NAME = "Ada Lovelace"


def spaced(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or None when the body was not JSON
    text: str
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.text[:300]}>"


class Api:
    """HTTP calls to a sidecar at ``base``, with a user's bearer token when given."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, token: Callable[[str], str]
    ) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self._token = token
        self.app: web.Application | None = None

    @property
    def services(self) -> Services:
        assert self.app is not None, "an in-process sidecar only"
        return self.app[SERVICES]

    async def call(
        self,
        method: str,
        path: str,
        user: str | None = None,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {self._token(user)}"
        if key is not None:
            sent["Idempotency-Key"] = key
        if json_body is not None:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.base + path, data=data, headers=sent, allow_redirects=False
        ) as r:
            text = await r.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            return Reply(r.status, body, text, dict(r.headers))

    # --- the user's steps ---

    async def put_profile(self, user: str) -> Reply:
        body = {
            "name": PROFILE_NAME,
            "email": user,
            "address": {"line1": "12 St James's Square", "city": "London", "country": "gb"},
        }
        return await self.call("PUT", "/v1/billing-profile", user, json_body=body)

    async def add_method(self, user: str, number: str = VISA_OK, **fields: Any) -> Reply:
        body: dict[str, Any] = {
            "number": number,
            "exp_month": 12,
            "exp_year": NEXT_YEAR,
            "name": HOLDER,
            "billing_address": {"line1": "1 Main St", "postal_code": "SW1Y 4LE", "country": "GB"},
        }
        body.update(fields)
        return await self.call("POST", "/v1/payment-methods", user, json_body=body)

    async def method(self, user: str, number: str = VISA_OK) -> str:
        """Save a card and return its payment method id."""
        r = await self.add_method(user, number)
        assert r.status == 201, r
        return str(r.body["id"])

    async def verify(self, user: str, card: str) -> Reply:
        return await self.call("POST", "/v1/cards/verify", user, json_body={"card": card})

    async def pay(
        self, user: str, card: str, method_id: str, code: str = GOOD_CODE, key: str | None = None
    ) -> Reply:
        body = {"card": card, "payment_method_id": method_id, "security_code": code}
        return await self.call("POST", "/v1/payments", user, json_body=body, key=key or new_key())

    async def payment(self, user: str, payment_id: str) -> Reply:
        return await self.call("GET", f"/v1/payments/{payment_id}", user)


def new_key() -> str:
    return "idem-" + uuid.uuid4().hex


def two_sidecars(env: Env, tmp_path: Path) -> tuple[Sidecar, Sidecar]:
    """Two sidecar processes on the env's one database (the second on its own port)."""
    second = tmp_path / "inboxpay-b.toml"
    env.edit(lambda d: d["sidecar"].update(listen=f"127.0.0.1:{free_port()}"), second)
    return (
        Sidecar(env.config_path, tmp_path / "sidecar-a.log"),
        Sidecar(second, tmp_path / "sidecar-b.log"),
    )


@dataclass
class Env:
    """A test's configuration directory, its store URL and the sandbox it pays through."""

    root: Path
    store_url: str
    sandbox: Sandbox
    config_path: Path = field(init=False)
    _baseline: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.config_path = self.root / "inboxpay.toml"

    @classmethod
    async def create(cls, root: Path, store_url: str, sandbox: Sandbox | None) -> Env:
        """``inboxpay init`` in ``root``, then the edits every test needs. With no
        ``sandbox`` the config pays through its own (not yet started) one."""
        init(root, sidecar_port=free_port(), sandbox_port=free_port())
        own = Sandbox.of_config(root / "inboxpay.toml", root / "sandbox.log")
        env = cls(root, store_url, sandbox or own)

        def edit(data: dict[str, Any]) -> None:
            data["storage"]["url"] = store_url
            data["sidecar"]["webmail_origins"] = [ORIGIN]
            data["processors"]["sandbox"] = env.sandbox.processor_table()

        env.edit(edit)
        if sandbox is not None:
            env._baseline = {c["id"] for c in await sandbox.ledger()}
        return env

    def edit(self, change: Callable[[dict[str, Any]], None], path: Path | None = None) -> None:
        """Change the TOML (read with tomllib, written back); ``path``: write a copy there."""
        data = tomllib.loads(self.config_path.read_text())
        change(data)
        (path or self.config_path).write_text(toml.dumps(data))

    @property
    def config(self) -> Config:
        return config_module.load(self.config_path)

    @property
    def recipient_key(self) -> bytes:
        return load_recipient_key(self.config.signing.recipient_key_file)

    # --- the money, as the processor sees it ---

    async def charges(self) -> list[dict[str, Any]]:
        """Ledger entries made since this environment was created."""
        return [c for c in await self.sandbox.ledger() if c["id"] not in self._baseline]

    # --- tokens and cards ---

    def token(self, sub: str, lifetime: int = 300) -> str:
        cfg = self.config
        issuer = cfg.sidecar.issuers[0]
        token = mint(issuer, load_issuer_key(issuer), cfg.sidecar.audience, sub, lifetime)
        self.tokens.add(token)
        return token

    def card(
        self,
        recipients: Sequence[str] = (ALICE,),
        *,
        amount: str = "1234.50",
        currency: str = "USD",
        partner: str = "xero",
        number: str | None = None,
        merchant: str = "Wide World Importers",
        account: str = "ACC-7",
        ttl: int = 30 * 86400,
    ) -> str:
        """An InboxPay-Card value for a new invoice, signed like the milter signs one."""
        return sign_card(
            self.config,
            recipients,
            partner_id=partner,
            merchant=merchant,
            account=account,
            amount=amount,
            currency=currency,
            number=number,
            ttl=ttl,
        )

    # --- the sidecar ---

    @contextlib.asynccontextmanager
    async def sidecar(self, cfg: Config | None = None) -> AsyncIterator[Api]:
        """The real application (create_app) on a loopback socket, and a client for it."""
        app = create_app(cfg or self.config)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, str(server.make_url("")), self.token)
                api.app = app
                yield api
        finally:
            await server.close()

    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """The store the sidecar uses, opened on its own (as another process would)."""
        store = await open_store(self.store_url, self.root)
        try:
            await store.migrate()
            yield store
        finally:
            await store.close()
