"""Mail-side subcommands: init, milter, config check, keys public."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inboxpay import config
from inboxpay.cli.common import EXIT_OK, Subparsers, command, config_arg
from inboxpay.errors import ConfigError


def cmd_milter(args: argparse.Namespace) -> int:
    from inboxpay import logs
    from inboxpay.atomicfile import stamp
    from inboxpay.milter.main import run

    before = stamp(Path(args.config).absolute())  # a change from here on reloads
    cfg = config.load(args.config)
    logs.setup(args.log_level)
    run(cfg, before)  # reads the key files first: a bad one is a config error
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from inboxpay.dev.init import init

    path = init(Path(args.dir), args.authserv_id)
    print(f"wrote {path} and keys in {path.parent / 'keys'}")
    print(f"next: inboxpay milter --config {path}")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from inboxpay.cli.config_check import check

    report = check(args.config)  # the key files too: signing, retired, recipient, vault
    if report.config is None:
        raise ConfigError(*report.errors)  # printed one per line by cli.main, exit 2
    cfg = report.config
    print(f"{cfg.path}: ok ({len(cfg.partners)} partners, {len(cfg.orgs)} organizations)")
    return EXIT_OK


def cmd_keys_public(args: argparse.Namespace) -> int:
    from inboxpay.card.keyring import load_signing_keys

    cfg = config.load(args.config)
    # The current key first, then retired keys still in their grace period.
    print(json.dumps(load_signing_keys(cfg.signing).jwks(), indent=2))
    return EXIT_OK


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from inboxpay.card.keys import generate_recipient_key, generate_signing_key
    from inboxpay.vault.keys import generate_vault_keys

    cfg = config.load(args.config)
    makers = (
        (cfg.signing.key_file, generate_signing_key),
        (cfg.signing.recipient_key_file, generate_recipient_key),
        (cfg.vault_key_file, generate_vault_keys),
    )
    for path, make in makers:
        # Never overwrite: a replaced key orphans every card or sealed record made with it.
        if path.exists():
            print(f"kept {path}")
        else:
            make(path)
            print(f"wrote {path}")
    return EXIT_OK


def register(sub: Subparsers) -> Subparsers:
    """Add the mail-side commands; return the ``keys`` action parser for the other side."""
    p = command(
        sub, "init", "write a development config and fresh keys", "inboxpay init --dir ./dev"
    )
    p.add_argument("--dir", default=".", help="folder to write inboxpay.toml and keys/ into")
    p.add_argument("--authserv-id", default="localhost", help="this MX's host name")
    p.set_defaults(handler=cmd_init)

    p = command(
        sub,
        "milter",
        "run the milter in the foreground",
        "inboxpay milter --config /etc/inboxpay/inboxpay.toml",
    )
    config_arg(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=cmd_milter)

    p = command(sub, "config", "configuration tools", "inboxpay config check --config FILE")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = command(
        csub,
        "check",
        "validate a config file and its key files, reporting every error (exit 2 if any)",
        "inboxpay config check --config /etc/inboxpay/inboxpay.toml",
    )
    config_arg(c)
    c.set_defaults(handler=cmd_config_check)

    p = command(sub, "keys", "key tools", "inboxpay keys public --config FILE")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = command(
        ksub,
        "public",
        "print the card-signing public keys as a JWKS",
        "inboxpay keys public --config /etc/inboxpay/inboxpay.toml",
    )
    config_arg(k)
    k.set_defaults(handler=cmd_keys_public)
    k = command(
        ksub,
        "generate",
        "write the key files the config names that do not exist yet (never overwrites)",
        "inboxpay keys generate --config /etc/inboxpay/inboxpay.toml",
    )
    config_arg(k)
    k.set_defaults(handler=cmd_keys_generate)
    return ksub
