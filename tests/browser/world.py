"""The browser suite's world: a config from ``inboxpay init``, the sandbox processor and
the sidecar as real processes, a Maildir for the demo inbox, and helpers to sign cards
(as the milter signs them), mint user tokens and read the processor's ledger.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inboxpay import config as config_module
from inboxpay.card.header import fold
from inboxpay.config import Config
from inboxpay.dev.init import init
from inboxpay.sidecar.auth import load_issuer_key, mint
from tests.support.cards import sign_card
from tests.support.procs import free_port, start, stop, wait_http

DEMO_USER = "you@localhost"
MERCHANT = "Wide World Importers"
NEXT_YEAR = datetime.date.today().year + 3

#: Sandbox test cards (inboxpay/processor/sandbox/cards.py).
VISA_OK = "4242424242424242"
DECLINE = "4000000000000002"
THREE_DS = "4000002500003155"
GOOD_CODE = "731"


def origin(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@dataclass
class World:
    root: Path
    sidecar_port: int
    sandbox_port: int
    webmail_port: int  # in webmail_origins
    stranger_port: int  # not in webmail_origins
    config: Config

    @property
    def sidecar(self) -> str:
        return origin(self.sidecar_port)

    @property
    def pane_url(self) -> str:
        return f"{self.sidecar}/pane/"

    @property
    def maildir(self) -> Path:
        return self.root / "mail"

    # --- tokens and cards ---

    def token(self, sub: str, lifetime: int = 600) -> str:
        sc = self.config.sidecar
        issuer = sc.issuers[0]
        return mint(issuer, load_issuer_key(issuer), sc.audience, sub, lifetime)

    def card(
        self,
        recipients: Sequence[str],
        *,
        amount: str = "1234.50",
        currency: str = "USD",
        number: str | None = None,
        due: datetime.date | None = None,
        url: str | None = None,
        ttl: int = 30 * 86400,
        broker: str = "Xero",
    ) -> str:
        """A folded ``InboxPay-Card`` value, signed with the config's key as the milter
        signs one (inboxpay/milter/stamp.py): readers strip the folding whitespace."""
        return fold(
            sign_card(
                self.config,
                recipients,
                merchant=MERCHANT,
                broker=broker,
                amount=amount,
                currency=currency,
                number=number,
                due=due,
                url=url,
                ttl=ttl,
            )
        )

    # --- the API and the processor, outside the browser ---

    def api(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        request = urllib.request.Request(self.sidecar + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def save_card(self, user: str, number: str = VISA_OK) -> dict[str, Any]:
        status, body = self.api(
            "POST",
            "/v1/payment-methods",
            self.token(user),
            {
                "number": number,
                "exp_month": 12,
                "exp_year": NEXT_YEAR,
                "name": "Augusta Ada King-Noel",
                "billing_address": {
                    "line1": "1 Main St",
                    "city": "London",
                    "postal_code": "SW1Y 4LE",
                    "country": "GB",
                },
            },
        )
        assert status == 201, body
        result: dict[str, Any] = body
        return result

    def ledger(self) -> list[dict[str, Any]]:
        """The charges that moved money, as the processor itself reports them."""
        api_key = (self.root / "keys" / "processor-api.key").read_text("ascii").strip()
        request = urllib.request.Request(
            f"{origin(self.sandbox_port)}/v1/ledger",
            headers={"Authorization": f"Bearer {api_key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            charges: list[dict[str, Any]] = json.loads(r.read())["charges"]
            return charges


def _configure(path: Path, webmail: str, sidecar: str) -> None:
    """Our webmail's origin (and the sidecar's own, for the demo) may embed the pane;
    the demo inbox reads ``mail/``."""
    text = path.read_text()
    for key, value in (
        ("webmail_origins", f'["{webmail}", "{sidecar}"]'),
        ("demo_maildir", '"mail/"'),
        ("demo_user", f'"{DEMO_USER}"'),
    ):
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
        assert n == 1, f"inboxpay init no longer writes [sidecar] {key}"
    path.write_text(text)


@contextmanager
def running_world(root: Path) -> Iterator[World]:
    ports = [free_port() for _ in range(4)]
    path = init(root, sidecar_port=ports[0], sandbox_port=ports[1])
    _configure(path, origin(ports[2]), origin(ports[0]))
    for sub in ("new", "cur", "tmp"):
        (root / "mail" / sub).mkdir(parents=True)
    world = World(root, ports[0], ports[1], ports[2], ports[3], config_module.load(path))
    cmd = [sys.executable, "-m", "inboxpay"]
    sandbox = start([*cmd, "processor-sandbox", "--config", str(path)], root / "sandbox.log")
    sidecar = start([*cmd, "sidecar", "--config", str(path)], root / "sidecar.log")
    try:
        wait_http(f"{origin(world.sandbox_port)}/healthz")
        wait_http(f"{world.sidecar}/healthz")
        yield world
    finally:
        stop(sidecar)
        stop(sandbox)
    log = (root / "sidecar.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    for secret in (VISA_OK, DECLINE, THREE_DS):
        assert secret not in log, "a card number reached the sidecar's log"
