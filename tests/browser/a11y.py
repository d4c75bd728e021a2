"""Accessibility checks run inside the pane on each screen it shows.

axe-core (bundled by axe-playwright-python, nothing downloaded at run time) audits the
pane's own document, the frame the webmail embeds, with all its rules: WCAG 2.0-2.2 A and
AA (names, labels, contrast, ARIA, structure) and Deque's best practices. Any violation
fails the test, listed by rule, impact and element.

One check axe does not make stays: nothing is wider than the viewport (a pane at 360 px
that scrolls sideways is unusable on a phone). Keyboard use, focus order and a visible
focus are tested by test_pane.py's keyboard test.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Frame

_AXE = Axe()
_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"]}
_SIDEWAYS = "() => document.documentElement.scrollWidth - window.innerWidth"


def violations(frame: Frame) -> list[str]:
    """axe-core's violations in ``frame``'s document, one line per rule and element."""
    response: dict[str, Any] = _AXE.run(frame, options=_OPTIONS).response
    found: list[str] = []
    for rule in response["violations"]:
        for node in rule["nodes"]:
            found.append(f"{rule['id']} ({rule['impact']}): {rule['help']}: {node['html'][:120]}")
    return found


def problems(frame: Frame) -> list[str]:
    found = violations(frame)
    overflow: int = frame.evaluate(_SIDEWAYS)
    if overflow > 1:
        found.append(f"scrolls sideways by {overflow} px")
    return found


def check(frame: Frame) -> None:
    found = problems(frame)
    assert not found, "\n".join(found)
