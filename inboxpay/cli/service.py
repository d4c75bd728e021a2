"""Service-side subcommands: sidecar, token, processor-sandbox, send-sample, dev-mta, org, db,
keys rotate-vault, keys rotate-signing."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from inboxpay import addresses, config
from inboxpay.cli.common import EXIT_OK, Subparsers, boolean, command, config_arg
from inboxpay.dev import DEFAULT_MTA_LISTEN
from inboxpay.errors import ConfigError, InboxPayError
from inboxpay.store.api import Store
from inboxpay.store.model import Payment, RowNotFound

T = TypeVar("T")


def with_store(cfg: config.Config, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured store (migrated), run ``work``, close it."""
    from inboxpay.store.engine import open_store

    async def go() -> T:
        store = await open_store(cfg.storage_url, cfg.path.parent)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def cmd_sidecar(args: argparse.Namespace) -> int:
    from inboxpay import logs
    from inboxpay.sidecar.app import run

    cfg = config.load(args.config)
    if not cfg.sidecar.issuers:
        raise ConfigError("[sidecar] issuers: at least one [[sidecar.issuers]] is needed")
    logs.setup(args.log_level)
    run(cfg)
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    from inboxpay.sidecar.auth import load_issuer_key, mint

    cfg = config.load(args.config)
    issuers = [i for i in cfg.sidecar.issuers if args.issuer in (None, i.iss)]
    if not issuers:
        raise ConfigError("[sidecar] issuers: no such issuer to mint with")
    issuer = issuers[0]
    lifetime = min(args.lifetime, cfg.sidecar.token_max_lifetime)
    user = addresses.normalize(args.user)
    print(mint(issuer, load_issuer_key(issuer), cfg.sidecar.audience, user, lifetime))
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from inboxpay import logs
    from inboxpay.processor.sandbox.server import run as run_sandbox
    from inboxpay.processor.sandbox.settings import settings_from_config

    cfg = config.load(args.config)
    if cfg.sandbox is None:
        raise ConfigError("[sandbox]: missing section")
    logs.setup(args.log_level)
    run_sandbox(settings_from_config(cfg.sandbox))
    return EXIT_OK


def _org_json(domain: str, enabled: bool, source: str) -> str:
    return json.dumps({"domain": domain, "pay_enabled": enabled, "source": source})


def cmd_org_set(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    domain = args.domain.lower().rstrip(".")

    async def work(store: Store) -> None:
        await store.set_org(domain, args.pay_enabled, "cli")
        await store.audit("cli", "org.set", domain, {"pay_enabled": args.pay_enabled})

    with_store(cfg, work)
    print(_org_json(domain, args.pay_enabled, "store"))
    return EXIT_OK


def cmd_org_show(args: argparse.Namespace) -> int:
    from inboxpay.sidecar.orgs import OrgDirectory

    cfg = config.load(args.config)
    domain = args.domain.lower().rstrip(".")

    async def work(store: Store) -> tuple[bool, str]:
        stored = await store.get_org(domain)
        enabled = await OrgDirectory(store, cfg.orgs).pay_enabled(domain)
        return enabled, "store" if stored else ("config" if domain in cfg.orgs else "default")

    enabled, source = with_store(cfg, work)
    print(_org_json(domain, enabled, source))
    return EXIT_OK


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from inboxpay.store.engine import open_store

    cfg = config.load(args.config)

    async def go() -> tuple[list[int], int]:
        store = await open_store(cfg.storage_url, cfg.path.parent)
        try:
            applied = await store.migrate()
            return applied, await store.schema_version()
        finally:
            await store.close()

    applied, version = asyncio.run(go())
    print(f"applied {applied or 'nothing'}; schema version {version}")
    return EXIT_OK


def cmd_rotate_vault(args: argparse.Namespace) -> int:
    from inboxpay.vault.envelope import Vault
    from inboxpay.vault.keys import add_kek_version, load_vault_keys

    cfg = config.load(args.config)
    version = add_kek_version(cfg.vault_key_file)
    vault = Vault(load_vault_keys(cfg.vault_key_file))

    async def work(store: Store) -> int:
        count = 0
        for method_id, owner, wrapped, old in await store.all_payment_method_keys():
            if old == version:
                continue
            new_wrapped, new_version = vault.rewrap(method_id, owner, wrapped, old)
            if await store.rewrap_payment_method(method_id, old, new_wrapped, new_version):
                count += 1
        await store.audit("cli", "vault.rotate", str(version), {"rewrapped": count})
        return count

    count = with_store(cfg, work)
    print(f"vault key version {version} active; rewrapped {count} payment methods")
    return EXIT_OK


def cmd_rotate_signing(args: argparse.Namespace) -> int:
    import datetime

    from inboxpay.card.keyring import rotate

    cfg = config.load(args.config)
    signing = cfg.signing
    try:
        done = rotate(signing)
    except OSError as e:
        raise InboxPayError(f"signing key not rotated: {e.filename}: {e.strerror}") from e
    until = datetime.datetime.fromtimestamp(done.verifiable_until, datetime.UTC)
    print(f"retired kid {done.old_kid}: its cards verify until {until:%Y-%m-%d %H:%M} UTC")
    print(f"current kid {done.new_kid}: new key in {signing.key_file}")
    print(f"retired keys in {signing.retired_keys_file}")
    if done.kept:
        print(f"still verifying older kids: {', '.join(done.kept)}")
    if done.pruned:
        print(f"dropped kids past their grace period: {', '.join(done.pruned)}")
    if signing.retired_key_grace_days < cfg.milter.card_ttl_days:
        print(
            f"warning: [signing] retired_key_grace_days ({signing.retired_key_grace_days}) is "
            f"shorter than [milter] card_ttl_days ({cfg.milter.card_ttl_days}): the newest "
            "cards of the old key are refused (retired_key) before they expire",
            file=sys.stderr,
        )
    print(
        "next:\n"
        f"  - the milter signs with the new key within {cfg.milter.org_refresh_seconds} s, "
        "without a restart;\n"
        "  - sidecars reading these files take both keys at their next request; on other "
        "hosts, copy both files there now (rsync -a);\n"
        "  - webmail that verifies cards itself: fetch GET /v1/keys (or `keys public`) again;\n"
        "  - back up the new key file; the old private key is gone."
    )
    return EXIT_OK


def _payment_line(p: Payment) -> dict[str, object]:
    return {
        "id": p.id,
        "owner": p.owner,
        "status": p.status,
        "decline_reason": p.decline_reason or None,
        "amount": p.details.get("amount"),
        "currency": p.currency,
        "merchant": p.details.get("merchant"),
        "invoice_number": p.details.get("invoice_number"),
        "partner": p.details.get("partner"),
        "card": f"{p.details.get('brand')} {p.details.get('last4')}",
        "processor": p.processor,
        "processor_ref": p.processor_ref or None,
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
    }


def cmd_payments_list(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)

    async def work(store: Store) -> list[Payment]:
        if args.user:
            return await store.list_payments(addresses.normalize(args.user), args.limit)
        return await store.list_all_payments(args.limit)

    for payment in with_store(cfg, work):
        print(json.dumps(_payment_line(payment)))
    return EXIT_OK


def cmd_payments_show(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)

    async def work(store: Store) -> Payment:
        return await store.get_payment_any_owner(args.payment_id)

    try:
        payment = with_store(cfg, work)
    except RowNotFound:
        raise InboxPayError(f"no payment {args.payment_id}") from None
    print(json.dumps(_payment_line(payment), indent=2))
    return EXIT_OK


def cmd_send_sample(args: argparse.Namespace) -> int:
    from inboxpay.dev import sample

    cfg = config.load(args.config)
    key_file = cfg.path.parent / "keys" / "sample-dkim.pem"
    if not key_file.exists():
        raise ConfigError(f"{key_file}: missing; the sample sender comes from `inboxpay init`")
    host, _, port = args.smtp.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--smtp: expected HOST:PORT, got {args.smtp!r}")
    if args.format not in sample.FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(sample.FORMATS)}")
    request_key = key_file.parent / sample.REQUEST_KEY
    if args.format == "signed-action-request" and not request_key.exists():
        raise ConfigError(f"{request_key}: missing; the sample partner's key comes from `init`")
    body = sample.message(args.to, args.amount, markup_format=args.format, request_key=request_key)
    sample.send(sample.signed(body, key_file), args.to, host, int(port))
    print(f"sent a signed sample invoice ({args.format}) to {args.to} through {args.smtp}")
    return EXIT_OK


def cmd_dev_mta(args: argparse.Namespace) -> int:
    from inboxpay.dev import mta as devmta

    cfg = config.load(args.config)
    if os.geteuid() != 0:
        raise devmta.DevMtaError(
            "dev-mta needs root: Postfix's master switches users and the Maildirs are handed "
            "to the delivery uid. Run it with sudo (or as root, like `make run`)."
        )
    sc = cfg.sidecar
    mta = devmta.for_config(
        cfg.path.parent,
        cfg.milter.socket,
        cfg.milter.authserv_id,
        sc.demo_user,
        sc.demo_maildir,
        args.listen,
        args.rcpt,
    )
    mta.start()
    listen = f"{mta.host}:{mta.smtp_port}"
    print(f"dev-mta: a private Postfix (development only) on {listen}, milter {mta.milter}")
    for address, maildir in mta.mailboxes.items():
        print(f"  mail to {address} lands in {maildir}/ (a Maildir: new/, cur/)")
    if sc.demo_maildir is None:
        print("  ([sidecar] demo_maildir is not set: the demo inbox at /demo/ is off)")
    print(f"  Postfix log: {mta.paths.log}; nothing is ever sent out")
    print(f"  try: inboxpay send-sample --config {args.config} --to {sc.demo_user} --smtp {listen}")
    print("Ctrl-C stops it.", flush=True)
    devmta.serve(mta, sys.stdout)
    print("dev-mta: Postfix stopped", flush=True)
    return EXIT_OK


def register(sub: Subparsers, keys: Subparsers) -> None:
    p = command(sub, "sidecar", "serve the pay API for webmail", "inboxpay sidecar --config FILE")
    config_arg(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=cmd_sidecar)

    p = command(
        sub,
        "token",
        "mint a short-lived user token (development)",
        "inboxpay token --config FILE --user alice@example.com",
    )
    config_arg(p)
    p.add_argument("--user", required=True, help="the user's email address (the token's sub)")
    p.add_argument("--issuer", help="which [[sidecar.issuers]] iss to sign as (default: first)")
    p.add_argument("--lifetime", type=int, default=600, help="seconds (capped by config)")
    p.set_defaults(handler=cmd_token)

    p = command(
        sub,
        "processor-sandbox",
        "run the sandbox payment processor (development)",
        "inboxpay processor-sandbox --config FILE",
    )
    config_arg(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=cmd_sandbox)

    p = command(
        sub,
        "send-sample",
        "submit a signed sample invoice through the local MTA (development)",
        "inboxpay send-sample --config dev/inboxpay.toml --to you@localhost",
    )
    config_arg(p)
    p.add_argument("--to", required=True, help="the recipient address")
    p.add_argument("--smtp", default="127.0.0.1:25", help="the MTA to submit to (HOST:PORT)")
    p.add_argument("--amount", default="70.00", help="the invoice amount in USD")
    p.add_argument(
        "--format",
        default="invoice-jsonld",
        help="the payment markup to write: invoice-jsonld (default), action-request,"
        " signed-action-request or invoice-microdata (docs/markup.md)",
    )
    p.set_defaults(handler=cmd_send_sample)

    p = command(
        sub,
        "dev-mta",
        "run a private Postfix with the milter attached, delivering to the demo inbox "
        "(development; needs root)",
        "sudo inboxpay dev-mta --config dev/inboxpay.toml",
    )
    config_arg(p)
    p.add_argument(
        "--listen",
        default=DEFAULT_MTA_LISTEN,
        metavar="HOST:PORT",
        help=f"where smtpd listens (loopback only; default {DEFAULT_MTA_LISTEN})",
    )
    p.add_argument(
        "--rcpt",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="also accept mail for ADDRESS, into mail/ADDRESS/ next to the config (repeatable)",
    )
    p.set_defaults(handler=cmd_dev_mta)

    p = command(
        sub, "payments", "payment history (JSON lines)", "inboxpay payments list --config FILE"
    )
    psub = p.add_subparsers(dest="payments_command", required=True, metavar="ACTION")
    q = command(
        psub,
        "list",
        "list payments, newest first",
        "inboxpay payments list --config FILE --user alice@example.com --limit 20",
    )
    config_arg(q)
    q.add_argument("--user", help="only this user's payments")
    q.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    q.set_defaults(handler=cmd_payments_list)
    q = command(
        psub, "show", "one payment, as a receipt", "inboxpay payments show pay_0123 --config FILE"
    )
    q.add_argument("payment_id")
    config_arg(q)
    q.set_defaults(handler=cmd_payments_show)

    p = command(
        sub, "org", "the per-organization pay switch", "inboxpay org show example.org --config FILE"
    )
    osub = p.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    o = command(
        osub,
        "set",
        "switch paying on or off for an organization",
        "inboxpay org set example.org --pay-enabled false --config FILE",
    )
    o.add_argument("domain")
    o.add_argument("--pay-enabled", required=True, type=boolean, metavar="true|false")
    config_arg(o)
    o.set_defaults(handler=cmd_org_set)
    o = command(
        osub,
        "show",
        "show an organization's setting",
        "inboxpay org show example.org --config FILE",
    )
    o.add_argument("domain")
    config_arg(o)
    o.set_defaults(handler=cmd_org_show)

    p = command(sub, "db", "database tools", "inboxpay db migrate --config FILE")
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    d = command(
        dsub, "migrate", "apply pending schema migrations", "inboxpay db migrate --config FILE"
    )
    config_arg(d)
    d.set_defaults(handler=cmd_db_migrate)

    k = command(
        keys,
        "rotate-vault",
        "add a vault key version and rewrap every payment method's data key",
        "inboxpay keys rotate-vault --config FILE",
    )
    config_arg(k)
    k.set_defaults(handler=cmd_rotate_vault)

    k = command(
        keys,
        "rotate-signing",
        "retire the card-signing key (its cards verify for [signing] retired_key_grace_days) "
        "and make a new one current; the milter and sidecars take it without a restart",
        "sudo inboxpay keys rotate-signing --config /etc/inboxpay/inboxpay.toml",
    )
    config_arg(k)
    k.set_defaults(handler=cmd_rotate_signing)
