"""Authentication-Results (RFC 8601): ours to write, and forged copies of ours to recognise."""

from __future__ import annotations

import authres
import authres.dmarc

from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.dmarc import Alignment
from inboxpay.auth.domains import within
from inboxpay.auth.spf import SpfResult

NAME = "Authentication-Results"


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
) -> str:
    """The value of our Authentication-Results field (without the name)."""
    results: list[object] = []
    for sig in dkim:
        props = [authres.AuthenticationResultProperty("header", "b", sig.b)] if sig.b else []
        # The signature may verify and still not vouch for the whole body (l=): say so.
        reason = None if sig.covers_body else "l= leaves part of the body unsigned"
        results.append(
            authres.DKIMAuthenticationResult(
                result=sig.result,
                reason=reason,
                header_d=sig.domain or None,
                header_s=sig.selector or None,
                properties=props,
            )
        )
    if not dkim:
        results.append(authres.DKIMAuthenticationResult(result="none"))
    if spf is not None:
        results.append(authres.SPFAuthenticationResult(result=spf.result, smtp_mailfrom=spf.domain))
    if spf_helo is not None:
        results.append(
            authres.SPFAuthenticationResult(result=spf_helo.result, smtp_helo=spf_helo.domain)
        )
    if alignment is not None:
        results.append(
            authres.dmarc.DMARCAuthenticationResult(
                result=alignment.result, header_from=from_domain or None
            )
        )
    header = authres.AuthenticationResultsHeader(authserv_id=authserv_id, results=results)
    text = str(header)
    return text.partition(":")[2].strip()
