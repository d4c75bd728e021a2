"""``inboxpay init``: a working development configuration with fresh keys."""

from __future__ import annotations

import json
from pathlib import Path

from inboxpay.card.keys import generate_recipient_key, generate_signing_key
from inboxpay.config import DEFAULT_PARTNERS, Partner
from inboxpay.dev import mta, sample
from inboxpay.errors import ConfigError
from inboxpay.processor.keys import generate_api_key, generate_processor_key, public_jwk_of
from inboxpay.vault.keys import generate_vault_keys

CONFIG_NAME = "inboxpay.toml"


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


#: The demo inbox's user, and the Maildir `inboxpay dev-mta` delivers that user's mail to.
DEMO_USER = "you@localhost"
DEMO_MAILDIR = f"{mta.MAIL_FOLDER}/{DEMO_USER}"

#: The development sender of `inboxpay send-sample`, authenticated by [[dns.static]]; its
#: public key vouches for `send-sample --format signed-action-request`.
SAMPLE_PARTNER = Partner(
    "sample",
    "InboxPay Sample Billing",
    (sample.DOMAIN,),
    (sample.URL_HOST,),
    signed_request_keys=(Path("keys") / sample.REQUEST_PUBLIC_KEY,),
)


def _partner(p: Partner) -> str:
    text = (
        f'[[partners]]\nid = "{p.id}"\nname = "{p.name}"\n'
        f"sender_domains = {_list(p.sender_domains)}\n"
        f"invoice_url_hosts = {_list(p.invoice_url_hosts)}\n"
    )
    if p.signed_request_keys:
        keys = tuple(str(k) for k in p.signed_request_keys)
        text += f"signed_request_keys = {_list(keys)}  # public keys of its signed requests\n"
    return text


def _static(records: list[tuple[str, str, str]]) -> str:
    return "\n".join(
        f'[[dns.static]]\nname = "{n}"\ntype = "{t}"\nvalue = "{v}"\n' for n, t, v in records
    )


def render(
    authserv_id: str = "localhost",
    port: int = 8894,
    sidecar_port: int = 8080,
    sandbox_port: int = 8090,
    static: list[tuple[str, str, str]] | None = None,
    metrics_port: int = 9894,
) -> str:
    partners = "\n".join(_partner(p) for p in (*DEFAULT_PARTNERS, SAMPLE_PARTNER))
    records = _static(static or [])
    return f"""\
# InboxPay development configuration, written by `inboxpay init`.
# Every key is documented in docs/configuration.md.

[milter]
socket = "inet:{port}@127.0.0.1"      # libmilter socket spec (inet:PORT@HOST or unix:/path)
authserv_id = "{authserv_id}"         # this MX's name in Authentication-Results
# internal_networks = ["10.0.0.0/8"]  # senders passed through untouched (besides forged cards)
metrics_listen = "127.0.0.1:{metrics_port}"  # Prometheus /metrics of the milter; "" for none

[dns]
nameservers = ["127.0.0.1"]
port = 53
timeout = 5.0
message_budget = 20.0                 # all DNS for one message; keep under milter_content_timeout

# Development only: the sample sender's SPF, DKIM and DMARC records, answered
# locally so `inboxpay send-sample` authenticates without a zone server.
{records}
[signing]
key_file = "keys/card-signing.pem"          # Ed25519 private key, PKCS#8 PEM
recipient_key_file = "keys/recipient.key"  # recipient-hash HMAC secret, shared with the sidecar

[policy]
alignment = "relaxed"                 # or "strict"; a sender's DMARC adkim=s/aspf=s wins

# Partners and merchants allowed to send payment requests. When present, this
# list replaces the built-in defaults, which are written out here (with the
# development "sample" sender; remove it in production).
{partners}
# Organizations not listed are enabled:
# [orgs."example.org"]
# pay_enabled = false

# --- the sidecar: the pay API webmail calls ---
[sidecar]
listen = "127.0.0.1:{sidecar_port}"
audience = "inboxpay"
webmail_origins = ["http://127.0.0.1:{sidecar_port}"]
admin_subjects = ["admin@localhost"]
# Development only, remove both lines in production: the demo inbox at
# http://127.0.0.1:{sidecar_port}/demo/ lists this Maildir (where `inboxpay dev-mta` delivers
# demo_user's mail) and gives a token for demo_user to anyone who can reach the sidecar.
demo_maildir = "{DEMO_MAILDIR}"
demo_user = "{DEMO_USER}"

[[sidecar.issuers]]                   # a webmail backend that signs user tokens
iss = "dev-webmail"
alg = "EdDSA"
key_file = "keys/webmail-issuer.pem"  # the private key, so `inboxpay token` can mint dev tokens

[storage]
url = "sqlite:///inboxpay.db"         # or postgresql://user:pass@host/db for several sidecars

[vault]
key_file = "keys/vault.json"          # versioned key-encryption keys; never in the database

[processors.sandbox]                  # partners name their processor; "sandbox" is the default
url = "http://127.0.0.1:{sandbox_port}"
public_key_file = "keys/processor-sandbox.pub.jwk"
api_key_file = "keys/processor-api.key"
timeout = 10.0

# --- the sandbox processor (development only): `inboxpay processor-sandbox` ---
[sandbox]
listen = "127.0.0.1:{sandbox_port}"
key_file = "keys/processor-sandbox.jwk"
api_key_file = "keys/processor-api.key"
ledger = "sandbox-ledger.db"
"""


KEY_FILES = (
    "sample-dkim.pem",
    sample.REQUEST_KEY,
    sample.REQUEST_PUBLIC_KEY,
    "card-signing.pem",
    "recipient.key",
    "webmail-issuer.pem",
    "vault.json",
    "processor-sandbox.jwk",
    "processor-sandbox.pub.jwk",
    "processor-api.key",
)


def init(directory: Path, authserv_id: str = "localhost", **ports: int) -> Path:
    """Write ``inboxpay.toml`` and fresh keys under ``directory``; never overwrite."""
    config = directory / CONFIG_NAME
    keys = directory / "keys"
    for existing in (config, *(keys / name for name in KEY_FILES)):
        if existing.exists():
            raise ConfigError(f"{existing} already exists; not overwriting it")
    directory.mkdir(parents=True, exist_ok=True)
    keys.mkdir(mode=0o700, exist_ok=True)
    generate_signing_key(keys / "card-signing.pem")
    generate_recipient_key(keys / "recipient.key")
    generate_signing_key(keys / "webmail-issuer.pem")
    generate_vault_keys(keys / "vault.json")
    generate_processor_key(keys / "processor-sandbox.jwk")
    public = json.dumps(public_jwk_of(keys / "processor-sandbox.jwk"), indent=2)
    (keys / "processor-sandbox.pub.jwk").write_text(public + "\n")
    generate_api_key(keys / "processor-api.key")
    dkim_txt = sample.generate_dkim_key(keys / "sample-dkim.pem")
    sample.generate_request_key(keys / sample.REQUEST_KEY, keys / sample.REQUEST_PUBLIC_KEY)
    config.write_text(render(authserv_id, static=sample.static_records(dkim_txt), **ports))
    return config
