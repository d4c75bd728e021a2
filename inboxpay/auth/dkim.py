"""DKIM verification of every signature, up to a cap, through our resolver.

dkimpy does the cryptography; this module translates its results and errors into
:class:`DkimResult`, and notes what a passing signature vouches for: whether ``l=``
leaves body content unsigned, which To/Cc addresses and top-level MIME fields its
``h=`` covers. Any exception from dkimpy is that one signature's permerror: hostile
tags must not end the checks of the others.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.utils import getaddresses

import dkim
import dkim.util

from inboxpay import addresses, deadline
from inboxpay.auth import dkim_accel
from inboxpay.deadline import DeadlineExceeded
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
    # Normalised addresses of the To and Cc field instances h= covers (a passing one only).
    addressed: tuple[str, ...] = ()
    # h= covers every top-level Content-Type, Content-Transfer-Encoding and MIME-Version.
    mime_signed: bool = False


# RFC 8301 3.1: rsa-sha1 must not be used for verifying.
_REFUSED_ALGORITHMS = {"rsa-sha1": "rsa-sha1 is not accepted (RFC 8301)"}
_RECIPIENT_FIELDS = frozenset({b"to", b"cc"})
_MIME_FIELDS = frozenset({b"content-type", b"content-transfer-encoding", b"mime-version"})
_SIGNATURE_FIELD = re.compile(rb"^dkim-signature[ \t]*:", re.IGNORECASE | re.MULTILINE)
_MAX_REASON = 120


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
    return fields.get(tag, b"").decode("utf-8", "replace").strip().lower()


def _unexpected(what: str, e: Exception) -> str:
    """Log an exception dkimpy should not have raised; the reason for Authentication-Results."""
    _log.warning("%s: dkimpy raised %s: %s", what, type(e).__name__, e)
    return f"{type(e).__name__}: {e}"[:_MAX_REASON]


def verify_all(
    message: bytes, resolver: Resolver, max_signatures: int, coverage: bool = True
) -> list[DkimResult]:
    """Verify each DKIM-Signature (topmost first, at most ``max_signatures``).

    ``coverage=False`` leaves ``addressed`` and ``mime_signed`` empty and False: what
    h= covers matters only to a card, and parsing the covered To and Cc cost a quarter
    of a verification.
    """
    try:
        d = dkim.DKIM(message, minkey=1024)
    except dkim.DKIMException as e:
        _log.info("message not parseable for DKIM: %s", e)
        return _unreadable(message, f"message not parseable: {e}")
    except DeadlineExceeded:
        raise
    except Exception as e:  # noqa: BLE001 - dkimpy's parser on hostile input: logged
        return _unreadable(message, _unexpected("message not parseable for DKIM", e))
    count = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    results = []
    for idx in range(min(count, max_signatures)):
        deadline.check()
        results.append(_verify_one(d, idx, resolver, coverage))
    return results


def _unreadable(message: bytes, reason: str) -> list[DkimResult]:
    """Signatures in a message dkimpy cannot parse are errors, not absent."""
    head = message.partition(b"\r\n\r\n")[0]
    if not _SIGNATURE_FIELD.search(head):
        return []
    return [DkimResult("", "", "permerror", True, "", reason[:_MAX_REASON])]


def _verify_one(d: dkim.DKIM, idx: int, resolver: Resolver, coverage: bool) -> DkimResult:
    dnsfunc = _DnsFunc(resolver)
    d.signature_fields = {}
    tags: dict[bytes, bytes] = {}
    addressed: tuple[str, ...] = ()
    covers, mime_signed = True, False
    try:
        tags = dkim.util.parse_tag_value(
            [v for n, v in d.headers if n.lower() == b"dkim-signature"][idx]
        )
        refused = _REFUSED_ALGORITHMS.get(_tag(tags, b"a"))
        if refused:
            result, reason = "policy", refused
        elif d.verify(idx=idx, dnsfunc=dnsfunc):
            result, reason = "pass", ""
            covers = b"l" not in tags or _covers_body(d, tags)
            if coverage:
                addressed, mime_signed = _covered_fields(d, tags)
        else:
            result, reason = "fail", "signature did not verify"
    except dkim.ValidationError as e:
        result, reason = "fail", str(e)
    except (dkim.DKIMException, dkim.util.InvalidTagValueList) as e:
        result, reason = "permerror", f"{type(e).__name__}: {e}"
    except DeadlineExceeded:
        raise
    except Exception as e:  # noqa: BLE001 - a hostile tag (l=; i=) crashed dkimpy: logged
        result, reason = "permerror", _unexpected(f"DKIM signature {idx}", e)
    if dnsfunc.failed:
        result, reason = "temperror", "key lookup failed"
    if result != "pass":
        covers, addressed, mime_signed = True, (), False
    # b= is case-sensitive base64: take it from the raw field, not lowercased.
    b = "".join(tags.get(b"b", b"").decode("ascii", "replace").split())[:8]
    return DkimResult(
        _tag(tags, b"d"),
        _tag(tags, b"s"),
        result,
        covers,
        b,
        reason[:_MAX_REASON],
        addressed,
        mime_signed,
    )


def _covered_fields(d: dkim.DKIM, fields: dict[bytes, bytes]) -> tuple[tuple[str, ...], bool]:
    """The To/Cc addresses in the field instances h= covers, and whether it covers every
    top-level MIME field.

    The instances are chosen as dkimpy (and RFC 6376 5.4.2) chooses them: for each name in
    h=, the next instance from the bottom, by the canonicalized name.
    """
    policy = dkim.CanonicalizationPolicy.from_c_value(fields.get(b"c", b"simple/simple"))
    # Only the names matter here: canonicalizing the values too (unfolding, whitespace)
    # cost more than the rest of this function.
    names = [n for n, _ in policy.canonicalize_headers([(n, b"") for n, _ in d.headers])]
    covered: set[int] = set()
    below: dict[bytes, int] = {}
    for wanted in (x.lower() for x in re.split(rb"\s*:\s*", fields.get(b"h", b""))):
        i = below.get(wanted, len(names))
        while i > 0:
            i -= 1
            if names[i].lower() == wanted:
                covered.add(i)
                break
        below[wanted] = i
    kinds = [n.strip().lower() for n, _ in d.headers]
    recipients = [_text(d.headers[i][1]) for i in sorted(covered) if kinds[i] in _RECIPIENT_FIELDS]
    addressed = tuple(
        addresses.normalize(addr)
        for _name, addr in getaddresses([v.replace("\r\n", "") for v in recipients])
        if addr
    )
    mime_signed = all(i in covered for i, kind in enumerate(kinds) if kind in _MIME_FIELDS)
    return addressed, mime_signed


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _covers_body(d: dkim.DKIM, fields: dict[bytes, bytes]) -> bool:
    """True when the l= length reaches the end of the canonicalized body."""
    try:
        policy = dkim.CanonicalizationPolicy.from_c_value(fields.get(b"c", b"simple/simple"))
        body = policy.canonicalize_body(d.body)
        return int(fields[b"l"]) >= len(body)
    except (ValueError, dkim.DKIMException):
        return False
