"""Authentication-Results (RFC 8601): ours to write, and forged copies of ours to recognise.

authres writes any value holding an "@" bare, so a MAIL FROM like ``"a@b"@example.com``
gave a field nobody could parse. Every value we write goes through :func:`pvalue`: a
token bare, anything else a quoted-string, always printable ASCII. authres's parser reads
a quoted value only as the last property of a result (it drops one followed by another),
so :func:`_props` writes tokens first and at most one quoted value per result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import authres
import authres.dmarc

from inboxpay.addresses import normalize_domain
from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.dmarc import Alignment
from inboxpay.auth.domains import within
from inboxpay.auth.spf import SpfResult

NAME = "Authentication-Results"
# RFC 2045 token: printable ASCII without tspecials.
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9!#$%&'*+.^_`{|}~-]")
_QUOTE = re.compile(r'(["\\])')


class _Value(str):
    """A value that authres writes through :func:`pvalue` (it calls ``quote_if_needed``)."""

    def quote_if_needed(self) -> str:
        return pvalue(self)


def pvalue(text: str) -> str:
    """``text`` as an RFC 8601 value: a token as it is, else a quoted-string.

    Characters outside printable ASCII (a header cannot carry them without RFC 6532, and
    authres cannot read them) become "?".
    """
    text = _NOT_PRINTABLE.sub("?", text)
    return text if _TOKEN.fullmatch(text) else '"' + _QUOTE.sub(r"\\\1", text) + '"'


def _domain(text: str) -> str:
    return normalize_domain(text) if text else ""  # A-labels rather than "?" where IDNA can


def _props(ptype: str, *pairs: tuple[str, str]) -> list[object]:
    """Properties for the non-empty values (an absent HELO is no ``smtp.helo=""``).

    Tokens first, then the one value that needs quoting; a second such value (only ever
    a hostile d= or s=) has its characters outside a token replaced by "_".
    """
    values = sorted(
        ((n, _NOT_PRINTABLE.sub("?", v)) for n, v in pairs if v),
        key=lambda nv: not _TOKEN.fullmatch(nv[1]),
    )
    quoted = [i for i, (_, v) in enumerate(values) if not _TOKEN.fullmatch(v)]
    for i in quoted[:-1]:
        values[i] = (values[i][0], _NOT_TOKEN.sub("_", values[i][1]))
    out: list[object] = []
    for name, value in values:
        prop = authres.AuthenticationResultProperty(ptype, name, "x")
        prop.value = _Value(value)  # authres's own QuotableValue would leave "a@b" bare
        out.append(prop)
    return out


def _result(cls: type, result: str, reason: str | None, props: list[object]) -> object:
    res = cls(result=result, properties=props)
    if reason:
        res.reason = _Value(reason)
    return res


def claims_our_id(value: bytes, authserv_id: str) -> bool:
    """A field to delete: it names our authserv-id (or a subdomain), or won't parse."""
    try:
        text = value.decode("utf-8")
        parsed = authres.AuthenticationResultsHeader.parse_value(text.replace("\r\n", " "))
    except (UnicodeDecodeError, authres.AuthResError, ValueError, IndexError):
        return True  # RFC 8601 5: a header we cannot parse cannot be trusted, nor kept as ours
    return within(str(parsed.authserv_id), authserv_id)


def build(
    authserv_id: str,
    spf: SpfResult | None,
    spf_helo: SpfResult | None,
    dkim: tuple[DkimResult, ...],
    alignment: Alignment | None,
    from_domain: str,
    authors: Sequence[tuple[str, Alignment]] = (),
) -> str:
    """The value of our Authentication-Results field (without the name).

    ``authors``, when From names several domains, gives one dmarc= result per author
    domain (RFC 7489 6.6.1) in place of ``alignment``.
    """
    results: list[object] = []
    for sig in dkim:
        # The signature may verify and still not vouch for the whole body (l=): say so.
        reason = sig.reason if sig.result == "policy" else None
        if not sig.covers_body:
            reason = "l= leaves part of the body unsigned"
        props = _props("header", ("d", _domain(sig.domain)), ("s", sig.selector), ("b", sig.b))
        results.append(_result(authres.DKIMAuthenticationResult, sig.result, reason, props))
    if not dkim:
        results.append(authres.DKIMAuthenticationResult(result="none"))
    if spf is not None:
        props = _props("smtp", ("mailfrom", _domain(spf.domain)))
        results.append(_result(authres.SPFAuthenticationResult, spf.result, None, props))
    if spf_helo is not None:
        props = _props("smtp", ("helo", _domain(spf_helo.domain)))
        results.append(_result(authres.SPFAuthenticationResult, spf_helo.result, None, props))
    dmarc = list(authors)
    if not dmarc and alignment is not None:
        dmarc.append((from_domain, alignment))
    for domain, each in dmarc:
        props = _props("header", ("from", _domain(domain)))
        results.append(_result(authres.dmarc.DMARCAuthenticationResult, each.result, None, props))
    header = authres.AuthenticationResultsHeader(authserv_id=authserv_id, results=results)
    text = str(header)
    return text.partition(":")[2].strip()
