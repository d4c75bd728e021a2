"""The second opinion: a conformant HTML5 parser (Lexbor) against our scanner's blocks.

``disagrees`` must be False for every genuine invoice, and True whenever a trick makes the
scanner and a browser see different payment markup: here the scanner's view is simulated
by passing blocks that miss, add or alter something.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from inboxpay.invoice import crosscheck
from inboxpay.invoice.crosscheck import disagrees
from inboxpay.invoice.markup import MarkupBlock, find_payment_markup

DATA = Path(__file__).parent.parent / "data" / "invoices"
TEMPLATES = Path(__file__).parent.parent / "e2e" / "templates"
INVOICE = {"@context": "https://schema.org", "@type": "Invoice", "identifier": "A-1"}
LD = f'<script type="application/ld+json">{json.dumps(INVOICE)}</script>'
ITEM = (
    '<div itemscope itemtype="https://schema.org/Invoice">'
    '<span itemprop="identifier">A-1</span><a itemprop="url" href="https://x/">pay</a></div>'
)


def own_view(html: str) -> bool:
    return disagrees(html, find_payment_markup(html))


@pytest.mark.parametrize("path", sorted(DATA.glob("*.html")), ids=lambda p: p.name)
def test_genuine_mail_never_disagrees(path: Path) -> None:
    html = path.read_text("utf-8")
    assert not own_view(html)
    assert not own_view(html.replace("\n", "\r\n"))  # as it arrives in mail


@pytest.mark.parametrize(
    "html",
    [
        LD,
        ITEM,
        f"<html><head>{LD}</head><body>{ITEM}</body></html>",
        f"<table><tr><td>{ITEM}</td></tr></table>",
        LD.replace("application/ld+json", " Application/LD+JSON; charset=utf-8 "),
        f"<svg><script type='application/ld+json'>{json.dumps(INVOICE)}</script></svg>",
        '<script type="application/ld+json">{"@type": "Organization", "name": "Acme"}</script>',
        '<script type="application/ld+json">{ not json but Invoice schema.org }</script>',
        "<p>no markup at all</p>",
    ],
)
def test_scanner_and_parser_agree(html: str) -> None:
    assert not own_view(html)


@pytest.mark.parametrize(
    "html",
    [
        f"<!-- a --!>{LD}",
        f"<svg><style>{LD}</style></svg>",
        f"<math><title>{ITEM}</title></math>",
        f"<script><!--<script></script><!--</script>{LD}",
    ],
)
def test_markup_the_scanner_missed_is_seen(html: str) -> None:
    assert find_payment_markup(html)  # the scanner of today finds it...
    assert disagrees(html, [])  # ...and a scanner that did not would be caught


def test_markup_only_the_scanner_sees_disagrees() -> None:
    blocks = find_payment_markup(LD)
    assert disagrees("<p>nothing here</p><script>x</script>", blocks)


def test_other_data_disagrees() -> None:
    other = LD.replace("A-1", "A-2")
    assert disagrees(other, find_payment_markup(LD))


def test_two_scripts_against_one_disagrees() -> None:
    assert disagrees(LD + LD, find_payment_markup(LD))


def test_a_property_moved_out_of_the_item_disagrees() -> None:
    outside = ITEM.replace('<a itemprop="url"', '</div><a itemprop="url"').replace(
        "</a></div>", "</a>"
    )
    assert disagrees(outside, find_payment_markup(ITEM))
    assert not own_view(outside)


def test_payment_action_microdata_the_scanner_does_not_read_disagrees() -> None:
    action = ITEM.replace("schema.org/Invoice", "schema.org/PaymentAction")
    assert find_payment_markup(action) == []
    assert disagrees(action, [])


def test_a_late_body_lends_its_attributes_to_the_real_one() -> None:
    # The parser makes the whole body an Invoice item; the scanner removes the tag that
    # brings the attributes, but cannot vouch for what the item would hold.
    html = '<div>x<body itemscope itemtype="https://schema.org/Invoice"><b itemprop="url">u</b>'
    [block] = find_payment_markup(html)
    assert (block.kind, block.data) == ("microdata", {})
    assert own_view(html)


def test_depth_past_the_scanners_limit_is_left_to_the_parser() -> None:
    html = "<div>" * 1100 + f"<svg><style>{LD}</style></svg>"
    assert find_payment_markup(html) == []
    assert own_view(html)


def test_templates_are_not_queried_by_clients() -> None:
    html = f"<template>{LD}</template>"
    assert find_payment_markup(html) and own_view(html)


def test_without_a_marker_the_parser_does_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("Lexbor ran")

    monkeypatch.setattr(crosscheck, "LexborHTMLParser", fail)
    assert not disagrees("<p>" + "x" * 100_000 + "</p>", [])


def test_too_many_tags_is_not_checked_and_disagrees() -> None:
    html = LD + "<p>x</p>" * (crosscheck.MAX_CHECKED_TAGS // 2 + 1)
    started = time.perf_counter()
    assert disagrees(html, find_payment_markup(html))
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "hostile",
    [
        "<div>" * 10_000 + LD,
        "<select>" + "<option>" * 10_000 + LD,
        '<div itemscope itemtype="https://schema.org/Invoice">' * 5_000,
        "<b><i><u><s>" * 2_500 + "<div>" * 2_500 + "</b>" * 2_500 + LD,
    ],
)
def test_hostile_input_under_the_tag_limit_is_cheap(hostile: str) -> None:
    started = time.perf_counter()
    disagrees(hostile, find_payment_markup(hostile))
    assert time.perf_counter() - started < 3


def test_blocks_of_other_kinds_compare_by_kind() -> None:
    [block] = find_payment_markup(LD)
    relabelled = MarkupBlock(block.start, block.end, "action", block.data)
    assert disagrees(LD, [relabelled])
