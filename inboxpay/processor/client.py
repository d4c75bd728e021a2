"""The sidecar's adapter for processors that speak the v1 protocol (docs/processor-protocol.md).

aiohttp and asyncio errors become the processor error tree in one place, :meth:`_send`;
HTTP statuses become it in :meth:`_fail`. What the caller must know is whether anything
may have been charged, so the split is on "was the request possibly sent":
a connection that never opened is ProcessorUnavailable, anything after is
ProcessorTimeout (outcome unknown) unless the processor clearly refused (4xx).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import aiohttp
from joserfc.jwk import ECKey

from inboxpay import __version__
from inboxpay.errors import ConfigError
from inboxpay.processor.errors import (
    MalformedMessage,
    ProcessorRejected,
    ProcessorTimeout,
    ProcessorUnavailable,
)
from inboxpay.processor.keys import load_api_key, load_public_jwk_file
from inboxpay.processor.protocol import (
    CHARGE_ID,
    CardSecret,
    ChargeRequest,
    ChargeResult,
    ErrorCode,
    error_code_of,
    is_http_url,
    ledger_from_json,
)
from inboxpay.processor.seal import seal_card

__all__ = ["ProcessorClient", "ProcessorSettings", "open_processor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Reply:
    status: int
    data: object  # the parsed JSON body; None when the body was empty or not JSON


class ProcessorSettings(Protocol):
    """What :func:`open_processor` reads: one ``[processors.NAME]`` table of the config."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def public_key_file(self) -> Path: ...
    @property
    def api_key_file(self) -> Path: ...
    @property
    def timeout(self) -> float: ...


async def open_processor(settings: ProcessorSettings) -> ProcessorClient:
    """A client with its own HTTP session, closed by :meth:`ProcessorClient.close`.

    Key files are read now, so a bad one is a ConfigError at start-up, naming the key.
    """
    where = f"[processors.{settings.name}]"
    if not is_http_url(settings.url):
        raise ConfigError(f"{where} url: expected an absolute http or https URL")
    public_key = load_public_jwk_file(settings.public_key_file, f"{where} public_key_file")
    api_key = load_api_key(settings.api_key_file, f"{where} api_key_file")
    return ProcessorClient(
        aiohttp.ClientSession(),
        settings.url,
        api_key,
        public_key,
        timeout=settings.timeout,
        owns_session=True,
    )


class ProcessorClient:
    """One processor endpoint. ``close()`` closes ``session`` only when ``owns_session``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        public_key: ECKey,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        owns_session: bool = False,
    ) -> None:
        if not is_http_url(base_url):
            raise ValueError("base_url must be an absolute http or https URL")
        self._session = session
        self._owns_session = owns_session
        self._base = base_url.rstrip("/")
        self._public_key = public_key
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"inboxpay/{__version__}",
        }
        # A separate connect limit: a connection that never opened means nothing was sent,
        # which the caller may treat as a clean failure rather than an unknown outcome.
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(connect_timeout, timeout))

    async def charge(self, req: ChargeRequest, card: CardSecret) -> ChargeResult:
        payment_method = seal_card(card, self._public_key)
        reply = await self._send("POST", "/v1/charges", body=req.to_json(payment_method))
        if reply.status not in (200, 201):
            self._fail(reply, "charge")
        result = self._charge_of(reply, "charge")
        if (result.idempotency_key, result.amount_minor, result.currency) != (
            req.idempotency_key,
            req.amount_minor,
            req.currency,
        ):
            # Not the charge we asked for: trust nothing and let the reconciler look it up.
            raise ProcessorTimeout("bad_response", "charge: the processor answered another charge")
        return result

    async def get(self, charge_id: str) -> ChargeResult:
        if not CHARGE_ID.fullmatch(charge_id):
            raise MalformedMessage("charge_id: expected 1-255 characters of [A-Za-z0-9_-]")
        reply = await self._send("GET", f"/v1/charges/{charge_id}")
        if reply.status != 200:
            self._fail(reply, "get charge")
        return self._charge_of(reply, "get charge")

    async def find(self, idempotency_key: str) -> ChargeResult | None:
        reply = await self._send("GET", "/v1/charges", params={"idempotency_key": idempotency_key})
        # Only the protocol's own "no such charge" means none: a 404 from a wrong base URL
        # or a proxy must not make the reconciler believe nothing was charged.
        if reply.status == 404 and error_code_of(reply.data) == ErrorCode.CHARGE_NOT_FOUND:
            return None
        if reply.status != 200:
            self._fail(reply, "find charge")
        result = self._charge_of(reply, "find charge")
        if result.idempotency_key != idempotency_key:
            raise ProcessorTimeout("bad_response", "find charge: answered another key's charge")
        return result

    async def ping(self) -> None:
        reply = await self._send("GET", "/healthz", authorized=False)
        if reply.status != 200:
            raise ProcessorUnavailable(f"health check answered HTTP {reply.status}")

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    async def ledger(self) -> list[ChargeResult]:
        """The charges that moved money (sandbox and test processors only)."""
        reply = await self._send("GET", "/v1/ledger")
        if reply.status != 200:
            self._fail(reply, "ledger")
        try:
            return ledger_from_json(reply.data)
        except MalformedMessage as e:
            raise ProcessorTimeout("bad_response", f"ledger: {e}") from e

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        authorized: bool = True,
    ) -> _Reply:
        """The one place where transport errors are translated. Never logs bodies."""
        headers = self._headers if authorized else {"User-Agent": self._headers["User-Agent"]}
        started = time.monotonic()
        try:
            async with self._session.request(
                method,
                self._base + path,
                params=params,
                json=body,
                headers=headers,
                timeout=self._timeout,
                # A redirect could carry the bearer elsewhere; the protocol has none.
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        # Order matters: ConnectionTimeoutError is a TimeoutError too, and is the one
        # timeout that proves nothing was sent.
        except aiohttp.ConnectionTimeoutError as e:
            raise ProcessorUnavailable(f"{method} {path}: connecting timed out") from e
        except aiohttp.ClientConnectorError as e:
            raise ProcessorUnavailable(f"{method} {path}: cannot connect ({e.strerror})") from e
        except TimeoutError as e:
            raise ProcessorTimeout("timeout", f"{method} {path}: no answer in time") from e
        except aiohttp.ClientError as e:
            raise ProcessorTimeout(
                "connection_lost", f"{method} {path}: connection failed ({type(e).__name__})"
            ) from e
        log.debug(
            "processor answered",
            extra={
                "method": method,
                "path": path,
                "status": status,
                "ms": round((time.monotonic() - started) * 1000),
            },
        )
        try:
            data: object = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            data = None
        return _Reply(status, data)

    @staticmethod
    def _fail(reply: _Reply, what: str) -> NoReturn:
        code = error_code_of(reply.data)
        if reply.status == 409 and code == ErrorCode.IDEMPOTENCY_IN_FLIGHT:
            raise ProcessorTimeout("in_flight", f"{what}: the key is still being processed")
        if 400 <= reply.status < 500:
            raise ProcessorRejected(reply.status, code)
        if reply.status >= 500:
            raise ProcessorTimeout("server_error", f"{what}: HTTP {reply.status}")
        raise ProcessorTimeout("bad_response", f"{what}: unexpected HTTP {reply.status}")

    @staticmethod
    def _charge_of(reply: _Reply, what: str) -> ChargeResult:
        try:
            return ChargeResult.from_json(reply.data)
        except MalformedMessage as e:
            raise ProcessorTimeout("bad_response", f"{what}: {e}") from e
