"""Helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from inboxpay.errors import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Subparsers = Any  # argparse's _SubParsersAction is private


def command(sub: Subparsers, name: str, help: str, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, epilog=f"example: {example}"
    )
    return parser


def config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="the InboxPay TOML file")


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def print_config_error(e: ConfigError) -> None:
    """One stderr line per problem, each naming its key (journald keeps them as lines)."""
    for line in e.errors:
        print(f"inboxpay: config error: {line}", file=sys.stderr)
