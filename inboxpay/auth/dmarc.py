"""The sender's DMARC record (RFC 7489): its policy and alignment modes.

InboxPay does not reject on DMARC; it reads the record to know whether the
domain owner asked for strict alignment, and reports dmarc= in Authentication-Results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.domains import aligned, normalize, organizational
from inboxpay.auth.spf import SpfResult
from inboxpay.dns import Resolver, txt_strings


@dataclass(frozen=True)
class DmarcRecord:
    policy: str  # none | quarantine | reject
    adkim: str  # r | s
    aspf: str  # r | s


def _parse(text: bytes) -> DmarcRecord | None:
    try:
        s = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    tags: dict[str, str] = {}
    for part in s.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip().lower()
    if tags.get("v") != "dmarc1" or "p" not in tags:
        return None
    return DmarcRecord(
        policy=tags["p"],
        adkim="s" if tags.get("adkim") == "s" else "r",
        aspf="s" if tags.get("aspf") == "s" else "r",
    )


def lookup(from_domain: str, resolver: Resolver) -> DmarcRecord | None:
    """The record at ``_dmarc.<domain>``, else at the organizational domain; raises DNSError."""
    domain = normalize(from_domain)
    for candidate in dict.fromkeys((domain, organizational(domain))):
        records = [
            r
            for r in (_parse(t) for t in txt_strings(resolver.lookup(f"_dmarc.{candidate}", "TXT")))
            if r
        ]
        if len(records) == 1:
            return records[0]
    return None


@dataclass(frozen=True)
class Alignment:
    """DMARC-style evaluation of one message (RFC 7489 section 3.1 and 4.2)."""

    result: str  # pass | fail | none | permerror | temperror
    dkim_domain: str  # the aligned passing signature's d=, "" when none
    spf_aligned: bool
    signature: DkimResult | None = None  # the aligned passing signature (the topmost)


def evaluate(
    from_domain: str,
    dkim: Sequence[DkimResult],
    spf: SpfResult | None,
    record: DmarcRecord | None,
    default_mode: str,
) -> Alignment:
    """Align the From domain with DKIM d= and the SPF domain; modes from the record if any.

    A signature whose ``l=`` leaves body content unsigned does not count.
    """
    if not from_domain:
        return Alignment("permerror", "", False)
    dkim_mode = "strict" if record and record.adkim == "s" else default_mode
    spf_mode = "strict" if record and record.aspf == "s" else default_mode
    signature = next(
        (
            s
            for s in dkim
            if s.result == "pass" and s.covers_body and aligned(s.domain, from_domain, dkim_mode)
        ),
        None,
    )
    signer = signature.domain if signature else ""
    spf_aligned = (
        spf is not None and spf.result == "pass" and aligned(spf.domain, from_domain, spf_mode)
    )
    if record is None:
        return Alignment("none", signer, spf_aligned, signature)
    return Alignment("pass" if signer or spf_aligned else "fail", signer, spf_aligned, signature)


@dataclass(frozen=True)
class AuthorRecord:
    """The DMARC record of one author domain, when From names several (RFC 7489 6.6.1)."""

    domain: str
    record: DmarcRecord | None
    error: bool = False  # the lookup failed temporarily


def evaluate_authors(
    authors: Sequence[AuthorRecord],
    dkim: Sequence[DkimResult],
    spf: SpfResult | None,
    default_mode: str,
) -> tuple[tuple[str, Alignment], ...]:
    """One evaluation per author domain, as ``(domain, alignment)``."""
    out = []
    for author in authors:
        alignment = evaluate(author.domain, dkim, spf, author.record, default_mode)
        if author.error:
            alignment = replace(alignment, result="temperror")
        out.append((author.domain, alignment))
    return tuple(out)
