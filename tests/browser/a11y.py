"""Accessibility checks run inside the pane on each screen: every control has a name,
every visible text meets WCAG 2.2 AA contrast, and nothing is wider than the viewport.

Not a full audit (no axe-core offline); these are the failures a pane like this one
actually risks: an unlabelled field, grey-on-grey text, a layout that scrolls sideways.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Frame

_CHECK = """
() => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const name = (el) =>
    (el.getAttribute("aria-label") || "").trim() ||
    [...(el.labels || [])].map((l) => l.textContent.trim()).join(" ") ||
    (el.tagName === "BUTTON" || el.tagName === "A" ? el.textContent.trim() : "");
  for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (visible(el) && !name(el)) problems.push(`no accessible name: ${el.outerHTML.slice(0, 80)}`);
  }
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el || !visible(el)) continue;
    if (el.closest(".visually-hidden")) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const fg = lum(rgb(style.color).slice(0, 3));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)}: ${t.textContent.trim().slice(0, 40)}`);
    }
  }
  const width = document.documentElement.scrollWidth;
  if (width > window.innerWidth + 1) problems.push(`scrolls sideways: ${width} px`);
  return problems;
}
"""


def problems(frame: Frame) -> list[Any]:
    found: list[Any] = frame.evaluate(_CHECK)
    return found


def check(frame: Frame) -> None:
    found = problems(frame)
    assert not found, found
