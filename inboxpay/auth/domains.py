"""Domain names: organizational domains (Public Suffix List, bundled) and DMARC-style alignment."""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList

_PSL = PublicSuffixList()  # the bundled list: never fetched at run time


def normalize(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


@lru_cache(maxsize=4096)
def organizational(domain: str) -> str:
    """RFC 7489 organizational domain: the public suffix plus one label."""
    d = normalize(domain)
    return _PSL.privatesuffix(d) or d


def aligned(a: str, b: str, mode: str = "relaxed") -> bool:
    """Whether two domains align: equal (strict) or sharing an organizational domain (relaxed)."""
    a, b = normalize(a), normalize(b)
    if not a or not b:
        return False
    if mode == "strict":
        return a == b
    return organizational(a) == organizational(b)


def within(domain: str, parent: str) -> bool:
    """``domain`` is ``parent`` or one of its subdomains."""
    d, p = normalize(domain), normalize(parent)
    return d == p or d.endswith("." + p)


def address_domain(address: str) -> str:
    """The domain of an address, without angle brackets; "" when there is none."""
    addr = address.strip().strip("<>").strip()
    return normalize(addr.rpartition("@")[2]) if "@" in addr else ""
