"""The sandbox's 3-D Secure challenge pages: self-contained HTML under a strict CSP.

No scripts, styles, images or fonts, so ``default-src 'none'`` holds. The forms have no
``action`` and post back to the page's own URL, which keeps working behind a proxy that
adds a path prefix. Everything from the request is escaped.
"""

from __future__ import annotations

import html

from inboxpay.currency import format_minor
from inboxpay.processor.sandbox.ledger import StoredCharge


def security_headers(redirect_origin: str | None = None) -> dict[str, str]:
    """Headers for every page. ``redirect_origin`` joins ``form-action`` because browsers
    apply it to the redirect that follows a form post: without it the 303 to the
    merchant's return URL would be blocked."""
    form_action = "'self'" + (f" {redirect_origin}" if redirect_origin else "")
    return {
        "Content-Security-Policy": (
            "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            f"form-action {form_action}"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )


def _button(outcome: str, label: str) -> str:
    return (
        f'<form method="post"><input type="hidden" name="outcome" value="{outcome}">'
        f'<button type="submit">{label}</button></form>\n'
    )


def challenge_page(charge: StoredCharge) -> str:
    amount = f"{format_minor(charge.amount_minor, charge.currency)} {charge.currency}"
    return _page(
        "Sandbox 3-D Secure challenge",
        f"<p>{html.escape(charge.merchant_name)} asks to charge {html.escape(amount)} "
        f"to the card ending {html.escape(charge.last4)}.</p>\n"
        "<p>This is the InboxPay sandbox processor: no bank is involved.</p>\n"
        + _button("pass", "Complete authentication")
        + _button("fail", "Fail authentication"),
    )


def message_page(title: str, text: str) -> str:
    return _page(title, f"<p>{html.escape(text)}</p>\n")
