"""The ``inboxpay`` command. Exit codes: 0 ok, 1 operational failure, 2 usage or config error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from inboxpay import __version__, config
from inboxpay.errors import ConfigError, InboxPayError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="the InboxPay TOML file")


def cmd_milter(args: argparse.Namespace) -> int:
    from inboxpay import logs
    from inboxpay.milter.server import Runtime, run

    cfg = config.load(args.config)
    Runtime(cfg)  # load keys now: a bad key file is a config error, before libmilter starts
    logs.setup(args.log_level)
    run(cfg)
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from inboxpay.init import init

    path = init(Path(args.dir), args.authserv_id)
    print(f"wrote {path} and keys in {path.parent / 'keys'}")
    print(f"next: inboxpay milter --config {path}")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from inboxpay.keys import load_recipient_key, load_signing_key

    cfg = config.load(args.config)
    load_signing_key(cfg.signing.key_file)
    load_recipient_key(cfg.signing.recipient_key_file)
    print(f"{cfg.path}: ok ({len(cfg.partners)} partners, {len(cfg.orgs)} organizations)")
    return EXIT_OK


def cmd_keys_public(args: argparse.Namespace) -> int:
    from inboxpay.keys import kid_of, load_signing_key, public_jwk

    cfg = config.load(args.config)
    key = load_signing_key(cfg.signing.key_file)
    print(json.dumps({"keys": [public_jwk(key, cfg.signing.kid or kid_of(key))]}, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inboxpay",
        description="Pay an invoice straight from the inbox, safely.",
        epilog="example: inboxpay init --dir /etc/inboxpay && "
        "inboxpay milter --config /etc/inboxpay/inboxpay.toml",
    )
    parser.add_argument("--version", action="version", version=f"inboxpay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "milter",
        help="run the milter in the foreground",
        epilog="example: inboxpay milter --config /etc/inboxpay/inboxpay.toml",
    )
    _config_arg(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=cmd_milter)

    p = sub.add_parser(
        "init",
        help="write a development config and fresh keys",
        epilog="example: inboxpay init --dir ./dev",
    )
    p.add_argument("--dir", default=".", help="folder to write inboxpay.toml and keys/ into")
    p.add_argument("--authserv-id", default="localhost", help="this MX's host name")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = csub.add_parser(
        "check",
        help="validate a config file and its key files",
        epilog="example: inboxpay config check --config /etc/inboxpay/inboxpay.toml",
    )
    _config_arg(c)
    c.set_defaults(handler=cmd_config_check)

    p = sub.add_parser("keys", help="key tools")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = ksub.add_parser(
        "public",
        help="print the card-signing public keys as a JWKS",
        epilog="example: inboxpay keys public --config /etc/inboxpay/inboxpay.toml",
    )
    _config_arg(k)
    k.set_defaults(handler=cmd_keys_public)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as e:
        print(f"inboxpay: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InboxPayError as e:
        print(f"inboxpay: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
