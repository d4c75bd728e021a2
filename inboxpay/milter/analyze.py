"""From recorded facts to evidence: SPF, DKIM, DMARC record, From and payment markup.

This is where the milter does its I/O (DNS, through the resolver it is given);
everything after it is pure.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.utils import getaddresses

from inboxpay.addresses import normalize_domain, split
from inboxpay.auth import dkim, dmarc, spf
from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.dmarc import AuthorRecord, DmarcRecord
from inboxpay.auth.spf import SpfResult
from inboxpay.config import Partner
from inboxpay.dns import DNSError, Resolver
from inboxpay.invoice.parse import MAX_AMOUNT
from inboxpay.invoice.scan import MarkupScan, requests, scan
from inboxpay.milter.decide import find_partner
from inboxpay.milter.facts import Evidence, MessageFacts

_log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Author domains whose DMARC record is looked up when From names several: bounded DNS.
MAX_AUTHOR_DOMAINS = 5


@dataclass(frozen=True)
class Limits:
    max_dkim_signatures: int = 5
    max_amount: Decimal = MAX_AMOUNT
    spf_timeout: float = 20.0


def is_internal(facts: MessageFacts, networks: Sequence[Network]) -> bool:
    return facts.authenticated or _in_networks(facts.client_ip, tuple(networks))


@functools.lru_cache(maxsize=4096)
def _in_networks(client_ip: str, networks: tuple[Network, ...]) -> bool:
    # Cached: an MX sees the same few thousand client addresses again and again, and
    # parsing one cost more than the rest of an ordinary message's analysis.
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def from_addresses(facts: MessageFacts) -> tuple[int, tuple[str, ...]]:
    """How many From fields, and every address in them (domain normalised)."""
    fields = facts.message.values("From")
    addresses = []
    for _name, addr in getaddresses([_text(v).replace("\r\n", "") for v in fields]):
        local, domain = split(addr)
        if domain:
            addresses.append(f"{local}@{normalize_domain(domain)}")
        elif addr:
            addresses.append(addr)  # no domain: it cannot align, decide() will see that
    return len(fields), tuple(addresses)


@dataclass(frozen=True)
class _Auth:
    spf: SpfResult | None = None
    spf_helo: SpfResult | None = None
    dkim: tuple[DkimResult, ...] = ()
    dmarc: DmarcRecord | None = None
    dmarc_error: bool = False
    authors: tuple[AuthorRecord, ...] = ()


def _dmarc_record(domain: str, resolver: Resolver) -> tuple[DmarcRecord | None, bool]:
    """The DMARC record of ``domain``, and whether the lookup failed."""
    try:
        return dmarc.lookup(domain, resolver), False
    except DNSError as e:
        _log.info("DMARC lookup for %s failed: %s", domain, e)
        return None, True


def _authors(found: tuple[str, ...], resolver: Resolver) -> tuple[AuthorRecord, ...]:
    """Each author domain's DMARC record when From names several (RFC 7489 6.6.1)."""
    domains = list(dict.fromkeys(d for d in (a.rpartition("@")[2] for a in found) if d))
    if len(found) < 2 or not domains:
        return ()
    return tuple(AuthorRecord(d, *_dmarc_record(d, resolver)) for d in domains[:MAX_AUTHOR_DOMAINS])


def _authenticate(
    facts: MessageFacts,
    addresses: tuple[str, ...],
    resolver: Resolver,
    limits: Limits,
    markup: MarkupScan,
) -> _Auth:
    from_domain = addresses[0].rpartition("@")[2] if len(addresses) == 1 else ""
    spf_mailfrom = spf_helo = None
    if facts.client_ip:
        spf_mailfrom = spf.check_mailfrom(
            facts.client_ip, facts.mail_from, facts.helo, resolver, limits.spf_timeout
        )
        spf_helo = spf.check_helo(facts.client_ip, facts.helo, resolver, limits.spf_timeout)
    if facts.truncated:
        signatures: tuple[DkimResult, ...] = (
            DkimResult("", "", "policy", True, "", "message too large to verify"),
        )
    else:
        # What a signature covers is read only on the way to a card: never without markup
        # (and, read as empty, it would remove the markup, never card it).
        coverage = bool(markup.found or markup.unwalked)
        signatures = tuple(
            dkim.verify_all(
                facts.message.as_bytes(), resolver, limits.max_dkim_signatures, coverage
            )
        )
    record, dmarc_error = _dmarc_record(from_domain, resolver) if from_domain else (None, False)
    authors = _authors(addresses, resolver)
    return _Auth(spf_mailfrom, spf_helo, signatures, record, dmarc_error, authors)


def could_earn_card(
    facts: MessageFacts,
    markup: MarkupScan,
    addresses: tuple[str, ...],
    n_from: int,
    partners: tuple[Partner, ...],
) -> bool:
    """Whether decide() would look at authentication: payment markup (or HTML we cannot
    read as a browser does) from a single From address in a partner's domain.

    Everything else is decided before decide() reads SPF, DKIM or DMARC (truncated or
    too complex: skipped; no markup: nothing to do; no single author or no partner:
    removed), so it needs no DNS and no DKIM hashing.
    """
    if facts.truncated or not markup.complete:
        return False
    if not markup.found and not markup.unwalked:
        return False
    if n_from != 1 or len(addresses) != 1:
        return False
    return find_partner(addresses[0].rpartition("@")[2].lower(), partners) is not None


def analyze(
    facts: MessageFacts,
    resolver: Resolver,
    networks: Sequence[Network],
    limits: Limits,
    partners: tuple[Partner, ...] | None = None,
) -> tuple[Evidence, MarkupScan]:
    """``partners``: authenticate only mail that could earn a card from one of them
    (``[milter] authentication_results = "payment"``); None: every message not internal.

    From is read only where a verdict or an authentication result needs it: not for
    internal mail, nor, with ``partners``, for mail without payment markup (its
    evidence then names no From address and no From field).
    """
    message_ids = facts.message.values("Message-ID")
    internal = is_internal(facts, networks)
    # Trusted senders are not checked at all: no DNS, and no scan, for them.
    markup = MarkupScan(()) if internal else scan(facts.message)  # too large is still cleaned
    needs_from = not internal and (partners is None or bool(markup.found or markup.unwalked))
    n_from, addresses = from_addresses(facts) if needs_from else (0, ())
    checked = not internal and (
        partners is None or could_earn_card(facts, markup, addresses, n_from, partners)
    )
    auth = _authenticate(facts, addresses, resolver, limits, markup) if checked else _Auth()
    evidence = Evidence(
        from_addresses=addresses,
        from_fields=n_from,
        message_id=_text(message_ids[0]).strip() if message_ids else "",
        recipients=tuple(facts.recipients),
        spf=auth.spf,
        spf_helo=auth.spf_helo,
        dkim=auth.dkim,
        dmarc=auth.dmarc,
        dmarc_error=auth.dmarc_error,
        requests=requests(markup, limits.max_amount),
        internal=internal,
        truncated=facts.truncated,
        markup_complete=markup.complete,
        suspect_markup=markup.suspect,
        received_at=time.time(),
        authors=auth.authors,
        repeated_mime_fields=markup.repeated_fields,
        authenticated=checked,
    )
    return evidence, markup
