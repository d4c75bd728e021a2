"""DKIM verification of every signature, up to a cap, through our resolver.

dkimpy does the cryptography; this module translates its results and errors into
:class:`DkimResult`, and notes when an ``l=`` signature leaves body content unsigned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim

from inboxpay.auth import dkim_accel
from inboxpay.dns import DNSError, Resolver, txt_strings

_log = logging.getLogger(__name__)

dkim_accel.install()


@dataclass(frozen=True)
class DkimResult:
    domain: str  # d=, lowercase ("" when unreadable)
    selector: str
    result: str  # pass | fail | neutral | temperror | permerror | policy (RFC 8601 names)
    covers_body: bool  # False when l= leaves part of the body unsigned
    b: str  # the first characters of b=, for header.b in Authentication-Results
    reason: str = ""


class _DnsFunc:
    """dkimpy's ``dnsfunc``: TXT lookups through our resolver, remembering failures."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self.failed = False

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        qname = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            strings = txt_strings(self._resolver.lookup(qname, "TXT"))
        except DNSError:
            self.failed = True
            return None
        return strings[0] if strings else None


def _tag(fields: dict[bytes, bytes], tag: bytes) -> str:
    return fields.get(tag, b"").decode("ascii", "replace").strip().lower()


def verify_all(message: bytes, resolver: Resolver, max_signatures: int) -> list[DkimResult]:
    """Verify each DKIM-Signature (topmost first, at most ``max_signatures``)."""
    try:
        d = dkim.DKIM(message, minkey=1024)
    except dkim.DKIMException as e:
        _log.info("message not parseable for DKIM: %s", e)
        return []
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    return [_verify_one(d, idx, resolver) for idx in range(min(count, max_signatures))]


def _verify_one(d: dkim.DKIM, idx: int, resolver: Resolver) -> DkimResult:
    dnsfunc = _DnsFunc(resolver)
    d.signature_fields = {}
    try:
        ok = bool(d.verify(idx=idx, dnsfunc=dnsfunc))
        result, reason = ("pass", "") if ok else ("fail", "signature did not verify")
    except dkim.ValidationError as e:
        result, reason = "fail", str(e)
    except dkim.DKIMException as e:
        result, reason = "permerror", str(e)
    if dnsfunc.failed:
        result, reason = "temperror", "key lookup failed"
    fields: dict[bytes, bytes] = d.signature_fields or {}
    covers = True
    if result == "pass" and b"l" in fields:
        covers = _covers_body(d, fields)
    # b= is case-sensitive base64: take it from the raw field, not lowercased.
    b = "".join(fields.get(b"b", b"").decode("ascii", "replace").split())[:8]
    return DkimResult(_tag(fields, b"d"), _tag(fields, b"s"), result, covers, b, reason)


def _covers_body(d: dkim.DKIM, fields: dict[bytes, bytes]) -> bool:
    """True when the l= length reaches the end of the canonicalized body."""
    try:
        policy = dkim.CanonicalizationPolicy.from_c_value(fields.get(b"c", b"simple/simple"))
        body = policy.canonicalize_body(d.body)
        return int(fields[b"l"]) >= len(body)
    except (ValueError, dkim.DKIMException):
        return False
