"""A second opinion on payment markup, from a conformant HTML5 parser (Lexbor).

``markup`` tokenises by hand to keep exact offsets for removal; a parser differential
between it and a mail client is markup that the scanner misses and the client reads. So
each HTML part that may hold payment markup is also parsed by Lexbor, which builds the tree
as browsers do, and the two are compared on what a client could turn into a payment:

- every ``script`` element, in any namespace (CSS selectors and ``getElementsByTagName``
  find SVG and MathML ones too), whose type is application/ld+json after the WHATWG
  normalisation (ASCII whitespace trimmed, ASCII case, the MIME essence): its text is read
  by the same JSON-LD reader as the scanner's, and the payment requests compared with what
  the scanner reported, kind and data;
- every outermost element with ``itemscope`` whose ``itemtype`` is a schema.org Invoice or
  payment action: its types and the names of the properties inside it, against the
  scanner's microdata items.

A genuine invoice reads the same both ways; hiding a script or an item from either side
changes a count, and moving properties in or out of an item changes its names. Property
values are not compared (text normalisation differs harmlessly), nor are scripts inside
<template>, which no DOM query reaches and the scanner reports anyway.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from selectolax.lexbor import LexborHTMLParser, LexborNode

from inboxpay import deadline
from inboxpay.invoice.markup import KIND_MICRODATA, MarkupBlock, item_dict, jsonld_blocks

# Where neither stands there is no script element and no microdata item to compare.
_MARKER = re.compile(r"<script|itemscope", re.IGNORECASE)
# Lexbor, like the standard's algorithm, can take time quadratic in the number of tags on
# hostile nesting (20,000 tags: about a second); past this many "<" the part is not checked
# and counts as disagreeing. Genuine invoices have a few hundred.
MAX_CHECKED_TAGS = 20_000
# More payment items than this is no invoice; finding the outermost ones costs their depth.
_MAX_ITEMS = 50
_ASCII_SPACE = "\t\n\f\r "
_LD_JSON = "application/ld+json"
_PAYMENT_ITEMTYPE = re.compile(
    r"^https?://(?:www\.)?schema\.org/(?:invoice|paymentaction|payaction)/?$", re.IGNORECASE
)

_Summary = Counter[str]


def disagrees(html: str, blocks: Sequence[MarkupBlock]) -> bool:
    """Whether a conformant parser sees other payment markup in ``html`` than ``blocks``.

    ``blocks`` are what ``find_payment_markup(html)`` found. True when the parser sees a
    payment request they do not account for, or they hold one the parser does not see.
    """
    if not _MARKER.search(html):
        return bool(blocks)
    if html.count("<") > MAX_CHECKED_TAGS:
        return True
    deadline.check()
    tree = LexborHTMLParser(html)
    scripts = [b for b in blocks if b.kind != KIND_MICRODATA]
    items = [b for b in blocks if b.kind == KIND_MICRODATA]
    theirs_items = _parser_items(tree)
    if theirs_items is None:
        return True
    return _parser_scripts(tree) != _script_summary(scripts) or theirs_items != Counter(
        _item_key(b.data) for b in items
    )


def _parser_scripts(tree: LexborHTMLParser) -> _Summary:
    found: list[MarkupBlock] = []
    for script in tree.css("script"):
        if _is_ld_json(script.attributes.get("type")):
            found.extend(jsonld_blocks(script.text(deep=True), 0, 0))
    return _script_summary(found)


def _is_ld_json(type_attr: str | None) -> bool:
    essence = (type_attr or "").strip(_ASCII_SPACE).split(";", 1)[0].strip(_ASCII_SPACE)
    return essence.lower() == _LD_JSON


def _script_summary(blocks: Iterable[MarkupBlock]) -> _Summary:
    return Counter(b.kind + " " + json.dumps(b.data, sort_keys=True, default=str) for b in blocks)


def _parser_items(tree: LexborHTMLParser) -> _Summary | None:
    """The outermost payment items the parser sees, or None when there are too many."""
    items = [e for e in tree.css("[itemscope]") if _is_payment_item(e)]
    if len(items) > _MAX_ITEMS:
        return None
    summary: _Summary = Counter()
    for item in items:
        if not any(_is_payment_item(a) for a in _ancestors(item)):
            types = _tokens(item.attributes.get("itemtype"))
            props = Counter(
                p
                for e in item.css("[itemprop]")
                if e.mem_id != item.mem_id  # css() matches the item itself too
                for p in _tokens(e.attributes.get("itemprop"))
            )
            summary[_key(item_dict(types), props)] += 1
    return summary


def _is_payment_item(element: LexborNode) -> bool:
    attrs = element.attributes
    if "itemscope" not in attrs:
        return False
    return any(_PAYMENT_ITEMTYPE.match(t) for t in _tokens(attrs.get("itemtype")))


def _ancestors(element: LexborNode) -> Iterable[LexborNode]:
    parent = element.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _tokens(value: str | None) -> list[str]:
    return (value or "").split()


def _item_key(data: dict[str, object]) -> str:
    """The scanner's item: its type and the names of all properties inside it."""
    props: Counter[str] = Counter()
    _count_props(data, props)
    return _key({"@type": data["@type"]} if "@type" in data else {}, props)


def _count_props(item: dict[str, object], props: Counter[str]) -> None:
    for name, value in item.items():
        if name == "@type":
            continue
        for one in value if isinstance(value, list) else [value]:
            props[name] += 1
            if isinstance(one, dict):
                _count_props(one, props)


def _key(types: dict[str, object], props: Counter[str]) -> str:
    return json.dumps([types.get("@type"), sorted(props.items())])
