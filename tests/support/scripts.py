"""What no script the sidecar ships may use: the strict CSP forbids some of it, and the
rest could keep or leak card data (storage, cookies, the URL, the console)."""

from __future__ import annotations

BANNED_IN_SCRIPTS = (
    "console.",
    "localStorage",
    "sessionStorage",
    "indexedDB",
    "document.cookie",
    "innerHTML",
    "eval(",
    "history.",
    "location.hash",
)


def banned_uses(script: str) -> list[str]:
    """The banned names ``script`` uses."""
    return [banned for banned in BANNED_IN_SCRIPTS if banned in script]
