"""``static/statuses.js``: the pane's payment statuses, generated from the store's one list.

``python -m inboxpay.sidecar.panejs`` writes it; tests/unit/test_payment_statuses.py fails
when the file and :class:`inboxpay.store.model.PaymentStatus` disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from inboxpay.store.model import ACTIVE_STATUSES, OPEN_STATUSES, PaymentStatus

STATUSES_JS = Path(__file__).parent / "static" / "statuses.js"


def _list(statuses: tuple[PaymentStatus, ...]) -> str:
    return "Object.freeze([" + ", ".join(json.dumps(s.value) for s in statuses) + "])"


def statuses_js() -> str:
    members = "".join(f"  {s.name}: {json.dumps(s.value)},\n" for s in PaymentStatus)
    return (
        "// Generated from inboxpay.store.model.PaymentStatus by\n"
        "// `python -m inboxpay.sidecar.panejs`: do not edit.\n"
        f"export const PaymentStatus = Object.freeze({{\n{members}}});\n"
        "// Waiting for the processor or the cardholder: the pane keeps asking.\n"
        f"export const OPEN_STATUSES = {_list(OPEN_STATUSES)};\n"
        "// Holding the invoice: at most one such payment per invoice.\n"
        f"export const ACTIVE_STATUSES = {_list(ACTIVE_STATUSES)};\n"
    )


def main() -> None:
    STATUSES_JS.write_text(statuses_js(), "utf-8")


if __name__ == "__main__":
    main()
