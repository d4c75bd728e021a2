"""What an operator sees of payments: Prometheus outcomes and `inboxpay payments list|show`."""

from __future__ import annotations

import json

import pytest

from .harness import ALICE, DECLINE, VISA_OK, Env, new_key
from .procs import run_cli

pytestmark = pytest.mark.asyncio


async def test_outcomes_are_counted_and_listed(env: Env) -> None:
    async with env.sidecar() as api:
        bad = await api.method(ALICE, DECLINE)
        good = await api.method(ALICE, VISA_OK)
        card = env.card([ALICE], amount="12.00", currency="USD", number="INV-OPS-1")
        declined = await api.pay(ALICE, card, bad, key=new_key())
        assert declined.body["status"] == "declined", declined
        paid = await api.pay(ALICE, card, good, key=new_key())
        assert paid.body["status"] == "succeeded", paid

        metrics = await api.call("GET", "/metrics")
        assert 'inboxpay_sidecar_payments_total{status="succeeded"} 1.0' in metrics.text
        assert 'inboxpay_sidecar_payments_total{status="declined"} 1.0' in metrics.text

    listed = run_cli("payments", "list", "--config", str(env.config_path), "--user", ALICE)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["succeeded", "declined"]  # newest first
    assert rows[0]["card"] == "visa 4242" and rows[0]["amount"] == "12.00"
    assert "4242424242424242" not in listed.stdout

    shown = run_cli("payments", "show", paid.body["id"], "--config", str(env.config_path))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["invoice_number"] == "INV-OPS-1"
    missing = run_cli("payments", "show", "pay_nope", "--config", str(env.config_path))
    assert missing.returncode == 1 and "no payment pay_nope" in missing.stderr
