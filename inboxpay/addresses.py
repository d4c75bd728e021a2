"""Mail addresses: where one splits, and when two are the same address.

:func:`normalize` is the one definition of "the same person" for all of InboxPay: the
card's recipient hashes (``card.header.recipient_hash``), the milter's match of envelope
recipients with the To/Cc addresses a DKIM signature covers, the sidecar's token subjects
(through :func:`signed_in`) and the owners the store keeps all go through it, so they can
never disagree. The rule is in docs/card-format.md.
"""

from __future__ import annotations

from inboxpay.errors import InboxPayError


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
    """Without a trailing dot; ASCII lower-cased when ASCII, else in A-labels (IDNA).

    Unicode lower-casing is never applied to a domain: it maps the Kelvin sign to "k", and
    that is for IDNA to decide (its mapping is the one resolvers apply, so such a name is
    the same domain in DNS). A name IDNA refuses is kept exactly as written: it matches
    only itself.
    """
    domain = domain.strip().rstrip(".")
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain


def folds_outside_ascii(local: str) -> bool:
    """Whether lower-casing would change a character of ``local`` outside ASCII (the Kelvin
    sign K to "k", "Ä" to "ä", "İ" to two characters)."""
    return any(not c.isascii() and c.lower() != c for c in local)


def normalize(address: str) -> str:
    """An address as it is compared and hashed: no angle brackets or surrounding space,
    local part ASCII lower-cased, the domain as :func:`normalize_domain` writes it.

    The local part is lower-cased, as recipient hashes always were: mailboxes that differ
    only in ASCII case are one mailbox on every system InboxPay serves. Beyond ASCII, case
    is not folded: "\u212aate" (Kelvin sign) is not "kate", whatever ``str.lower`` says. A
    local part that lower-casing would change outside ASCII is kept exactly as written, so
    it never equals a normalised address of anyone else; :func:`signed_in` refuses it.
    """
    local, domain = split(address.strip().removeprefix("<").removesuffix(">").strip())
    if not folds_outside_ascii(local):
        local = local.lower()  # ASCII only: nothing else in it changes case
    if not domain:
        return local
    return f"{local}@{normalize_domain(domain)}"


class AddressError(InboxPayError, ValueError):
    """An address that cannot name a user who signs in."""


def signed_in(address: str) -> str:
    """:func:`normalize` for the address of a user who signs in (a token's subject, an
    administrator, the demo user): AddressError when its local part has letters whose case
    folds outside ASCII, since which mailbox that names depends on the mail system."""
    local, domain = split(address.strip().removeprefix("<").removesuffix(">").strip())
    if not domain:
        raise AddressError("not an address: there is no domain")
    if folds_outside_ascii(local):
        raise AddressError("the local part has letters whose case folds outside ASCII")
    return normalize(address)
