"""One list of payment statuses (store.model.PaymentStatus): the OpenAPI document and the
pane's generated statuses.js are derived from it and must agree with it. (The SQL CHECK
constraint is held to it by tests/store/test_status_constraint.py, on both engines.)"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from inboxpay.sidecar.openapi import document
from inboxpay.sidecar.panejs import statuses_js
from inboxpay.sidecar.routes.pane import PANE_MODULES
from inboxpay.store.model import ACTIVE_STATUSES, OPEN_STATUSES, PaymentStatus

ALL = [s.value for s in PaymentStatus]


def test_the_list() -> None:
    assert ALL == ["pending", "requires_action", "succeeded", "declined", "failed"]
    assert set(OPEN_STATUSES) < set(ACTIVE_STATUSES) < set(PaymentStatus)


def _schema(path: str, method: str, status: str) -> dict[str, Any]:
    op = document()["paths"][path][method]
    schema: dict[str, Any] = op["responses"][status]["content"]["application/json"]["schema"]
    return schema


def test_openapi_enums_come_from_the_enum() -> None:
    assert _schema("/v1/payments/{id}", "get", "200")["properties"]["status"]["enum"] == ALL
    listing = _schema("/v1/payments", "get", "200")["properties"]["data"]["items"]
    assert listing["properties"]["status"]["enum"] == ALL
    review = _schema("/v1/cards/verify", "post", "200")["properties"]["payment"]["oneOf"][1]
    assert review["properties"]["status"]["enum"] == ALL


def test_the_panes_statuses_js_is_generated_from_the_enum() -> None:
    shipped = resources.files("inboxpay.sidecar").joinpath("static", "statuses.js")
    # Out of date? Run: python -m inboxpay.sidecar.panejs
    assert shipped.read_text("utf-8") == statuses_js()
    for status in PaymentStatus:
        assert f'{status.name}: "{status.value}",' in statuses_js()


def test_the_pane_spells_no_payment_status_itself() -> None:
    static = resources.files("inboxpay.sidecar").joinpath("static")
    pay = static.joinpath("pay.js").read_text("utf-8")
    assert 'from "./statuses.js"' in pay
    # (sendResult's "succeeded" and "pending" are the embedding protocol's words.)
    spelled = "|".join(s.value for s in PaymentStatus)
    for name in PANE_MODULES:
        if name != "statuses.js":
            script = static.joinpath(name).read_text("utf-8")
            assert not re.search(rf'status\s*[!=]==\s*"({spelled})"', script), name
