"""The benchmark's mail and DNS: two sending domains, their keys and zones, two messages.

Unlike the e2e world, whose senders are spoofed with XCLIENT, smtp-source really
connects from 127.0.0.1, so each sending domain's SPF authorises ``ip4:127.0.0.1``.
The names are under .example, not .test as in the e2e world: OpenDKIM resolves
through libunbound, which answers NXDOMAIN itself for .test (RFC 6761) unless given
a config file, and Debian's OpenDKIM 2.11.0 crashes parsing one under load.
Messages and keys are built with the e2e helpers, so the bytes are exactly what
DKIM signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.e2e.dnsserver import Zones
from tests.e2e.messages import Invoice, invoice_mail, notice_mail
from tests.e2e.world import DkimKey, new_dkim_key

AUTHSERV_ID = "mx.bench.example"
RECIPIENT = "bob@inbox.example"
PARTNER_DOMAIN = "post.xero.example"
INVOICE_HOST = "in.xero.example"
SPF_LOOPBACK = "v=spf1 ip4:127.0.0.1 -all"


@dataclass(frozen=True)
class Sender:
    """One stream of mail: who signs it, the envelope and the HELO smtp-source uses."""

    kind: str
    domain: str
    selector: str
    helo: str
    mail_from: str
    header_from: str
    dmarc: str


# The partner in PARTNERS_TOML: its invoices earn a card.
INVOICES = Sender(
    kind="invoice",
    domain=PARTNER_DOMAIN,
    selector="s1",
    helo=f"mail.{PARTNER_DOMAIN}",
    mail_from=f"bounce@{PARTNER_DOMAIN}",
    header_from=f"Xero on behalf of Acme Supplies <billing@{PARTNER_DOMAIN}>",
    dmarc="v=DMARC1; p=reject",
)
# Ordinary signed mail from a domain that is no partner: authenticated, no card.
ORDINARY = Sender(
    kind="ordinary",
    domain="shop.example",
    selector="mail",
    helo="mail.shop.example",
    mail_from="news@shop.example",
    header_from="Shop News <news@shop.example>",
    dmarc="v=DMARC1; p=none",
)
SENDERS = (ORDINARY, INVOICES)

# The InboxPay policy for the benchmark: one partner, the invoice sender.
PARTNERS_TOML = f"""\
[[partners]]
id = "xero"
name = "Xero"
sender_domains = ["{PARTNER_DOMAIN}"]
invoice_url_hosts = ["{INVOICE_HOST}"]
"""


@dataclass(frozen=True)
class Traffic:
    keys: dict[str, DkimKey]
    files: dict[str, Path]  # kind -> message file for smtp-source -F

    def sizes(self) -> dict[str, int]:
        return {kind: path.stat().st_size for kind, path in self.files.items()}


def zones(keys: dict[str, DkimKey]) -> Zones:
    z = Zones()
    for s in SENDERS:
        z.txt[s.domain] = SPF_LOOPBACK
        # SPF for the HELO name too, so the milter's HELO check resolves like real mail.
        z.txt[s.helo] = SPF_LOOPBACK
        z.txt[keys[s.domain].record_name] = keys[s.domain].record
        z.txt[f"_dmarc.{s.domain}"] = s.dmarc
    # The partner domain's organizational domain, for DMARC's fallback lookup.
    z.txt["_dmarc.xero.example"] = "v=DMARC1; p=reject"
    return z


def message(sender: Sender, key: DkimKey) -> bytes:
    if sender.kind == "invoice":
        invoice = Invoice(url=f"https://{INVOICE_HOST}/view/abc123")
        mail = invoice_mail(invoice, sender.header_from, (f"Bob <{RECIPIENT}>",))
    else:
        mail = notice_mail(
            sender.header_from,
            (f"Bob <{RECIPIENT}>",),
            subject="This week at Shop",
            text="New arrivals, a sale on winter coats and your loyalty points.",
        )
    return key.sign(mail)


def smtp_source_text(raw: bytes) -> bytes:
    """``raw`` with LF line ends: smtp-source -F appends CRLF to each line it reads."""
    return raw.replace(b"\r\n", b"\n")


def build(workdir: Path) -> Traffic:
    keys = {s.domain: new_dkim_key(s.domain, s.selector) for s in SENDERS}
    files = {}
    for s in SENDERS:
        path = workdir / f"{s.kind}.eml"
        path.write_bytes(smtp_source_text(message(s, keys[s.domain])))
        files[s.kind] = path
    return Traffic(keys, files)
