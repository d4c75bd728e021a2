"""What the milter callbacks record about one message, and what analysis finds in it.

Callbacks only record; :mod:`inboxpay.milter.analyze` turns facts into
evidence; :func:`inboxpay.milter.decide.decide` turns evidence into a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inboxpay.auth.dkim import DkimResult
from inboxpay.auth.dmarc import AuthorRecord, DmarcRecord
from inboxpay.auth.spf import SpfResult
from inboxpay.invoice.scan import PaymentRequest
from inboxpay.message import RawMessage


@dataclass
class MessageFacts:
    """The SMTP envelope and the message, as the MTA handed them over."""

    client_ip: str = ""
    client_name: str = ""
    helo: str = ""
    mail_from: str = ""
    recipients: list[str] = field(default_factory=list)
    authenticated: bool = False  # {auth_authen} was set: authenticated submission
    queue_id: str = ""
    message: RawMessage = field(default_factory=RawMessage)
    truncated: bool = False  # the body exceeded the size the milter examines


@dataclass(frozen=True)
class Evidence:
    """Everything ``decide`` needs, with no I/O left to do."""

    # Every address of every From field, and how many From fields; left empty (not read)
    # where no verdict needs them: internal mail, and mail without payment markup unless
    # every message is authenticated (analyze).
    from_addresses: tuple[str, ...]
    from_fields: int
    message_id: str
    recipients: tuple[str, ...]
    spf: SpfResult | None  # None when not checked (internal mail)
    spf_helo: SpfResult | None
    dkim: tuple[DkimResult, ...]
    dmarc: DmarcRecord | None
    dmarc_error: bool  # the DMARC lookup failed temporarily
    requests: tuple[PaymentRequest, ...]
    internal: bool  # authenticated submission or an internal network: pass through
    truncated: bool
    markup_complete: bool = True  # False: a MIME limit left parts unread for markup
    suspect_markup: bool = False  # HTML a browser may read other than our scanner did
    received_at: float = 0.0  # unix time of the analysis: the age of signed requests
    authors: tuple[AuthorRecord, ...] = ()  # per author domain, when From names several
    # Content-Type, Content-Transfer-Encoding or MIME-Version repeat in some entity.
    repeated_mime_fields: bool = False
    # SPF, DKIM and DMARC were checked. With [milter] authentication_results = "payment"
    # only mail that could earn a card is; for the rest every result above is empty.
    authenticated: bool = True

    @property
    def from_domain(self) -> str:
        if len(self.from_addresses) != 1:
            return ""
        return self.from_addresses[0].rpartition("@")[2].lower()
