"""Schemathesis against the published OpenAPI document: no 5xx, no schema violation.

The document is the one the sidecar serves (``document()`` is pure, so it can be
loaded at import time); the calls go to a real sidecar process on SQLite, with
the sandbox processor as its own process. Every operation is fuzzed twice: with an
administrator's token (which reaches every endpoint) and with a plain user's (whose
answers on the admin endpoints, and on everything owner-scoped, differ).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from inboxpay import config
from inboxpay.dev.init import init
from inboxpay.sidecar.auth import load_issuer_key, mint
from inboxpay.sidecar.openapi import document
from tests.support.procs import free_port, start, stop, wait_http

schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document())))


#: The token subjects: one in [sidecar] admin_subjects (inboxpay init), one not.
SUBJECTS = {"admin": "admin@localhost", "user": "alice@example.com"}


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The sidecar's base URL, and a bearer token per role of SUBJECTS."""
    root: Path = tmp_path_factory.mktemp("fuzz")
    port, sandbox_port = free_port(), free_port()
    path = init(root, sidecar_port=port, sandbox_port=sandbox_port)
    # Generous limits: the fuzzer adds many cards; limits have their own tests.
    path.write_text(
        path.read_text() + "\n[limits]\npayment_methods_per_day = 100000\n"
        "payment_attempts_per_hour = 100000\n"
    )
    cfg = config.load(path)
    cmd = [sys.executable, "-m", "inboxpay"]
    sandbox = start([*cmd, "processor-sandbox", "--config", str(path)], root / "sandbox.log")
    app = start([*cmd, "sidecar", "--config", str(path)], root / "sidecar.log")
    try:
        wait_http(f"http://127.0.0.1:{sandbox_port}/healthz")
        wait_http(f"http://127.0.0.1:{port}/healthz")
        issuer = cfg.sidecar.issuers[0]
        key = load_issuer_key(issuer)
        # Tokens live 900 s, the longest allowed: longer than the run of either role.
        tokens = {
            role: mint(issuer, key, cfg.sidecar.audience, sub, 900)
            for role, sub in SUBJECTS.items()
        }
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        stop(app)
        stop(sandbox)
    log = (root / "sidecar.log").read_text()
    assert "Traceback" not in log, log[-2000:]


@pytest.mark.parametrize("role", sorted(SUBJECTS))
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms(
    case: schemathesis.Case, sidecar: tuple[str, dict[str, str]], role: str
) -> None:
    base_url, tokens = sidecar
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    # Every default check, except "schema-valid data must be accepted": a schema cannot say
    # that a card must carry a valid signature or a number pass Luhn; those are 4xx by design.
    case.call_and_validate(
        base_url=base_url,
        headers=headers,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
