"""Mail addresses: where one splits, and when two are the same address.

:func:`normalize` is the one definition of "the same recipient" for the whole milter: the
card's recipient hashes (``card.recipient_hash``) and the match of envelope recipients with
the To/Cc addresses a DKIM signature covers both go through it, so they can never disagree.
"""

from __future__ import annotations


def split(address: str) -> tuple[str, str]:
    """``(local part, domain)``, split at the last "@" outside a quoted string.

    ``"a@b"@example.com`` is the local part ``"a@b"`` at ``example.com``. Without such an
    "@" the whole text is the local part and the domain is "".
    """
    at, quoted, escaped = -1, False, False
    for i, char in enumerate(address):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "@" and not quoted:
            at = i
    if at < 0:
        return address, ""
    return address[:at], address[at + 1 :]


def normalize_domain(domain: str) -> str:
    """Lower-case, without a trailing dot, and in A-labels (IDNA) when not ASCII."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain  # not a valid IDN: compared as written, so it matches only itself


def normalize(address: str) -> str:
    """An address as it is compared and hashed: no angle brackets or surrounding space,
    local part and domain lower-cased, the domain in A-labels.

    The local part is lower-cased too, as recipient hashes always were: mailboxes that
    differ only in case are one mailbox on every system InboxPay serves.
    """
    local, domain = split(address.strip().removeprefix("<").removesuffix(">").strip())
    if not domain:
        return local.lower()
    return f"{local.lower()}@{normalize_domain(domain)}"
