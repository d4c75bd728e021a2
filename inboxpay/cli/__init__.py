"""The ``inboxpay`` command. Exit codes: 0 ok, 1 operational failure, 2 usage or config error.

Each subcommand lives with its kin: mail-side ones in ``cli.mail``, service-side
ones in ``cli.service``; this module only parses and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from inboxpay import __version__
from inboxpay.cli import mail, partners, service
from inboxpay.cli.common import EXIT_FAILURE, EXIT_USAGE, print_config_error
from inboxpay.errors import ConfigError, InboxPayError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inboxpay",
        description="Pay an invoice straight from the inbox, safely.",
        epilog="example: inboxpay init --dir ./dev && inboxpay milter --config ./dev/inboxpay.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"inboxpay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    keys = mail.register(sub)
    service.register(sub, keys)
    partners.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as e:
        print_config_error(e)
        return EXIT_USAGE
    except InboxPayError as e:
        print(f"inboxpay: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
