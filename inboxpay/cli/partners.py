"""``inboxpay partners list|add|remove``: the ``[[partners]]`` of the config file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from inboxpay import config
from inboxpay.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    command,
    config_arg,
    print_config_error,
)
from inboxpay.config import Partner
from inboxpay.config.edit import PartnersEdit, add_partner, remove_partner
from inboxpay.errors import ConfigError

#: How a change reaches the running services (the milter polls its config file).
TAKES_EFFECT = (
    "the milter reloads it within 30 s; restart the sidecar: systemctl restart inboxpay-sidecar"
)
EXAMPLE_CONFIG = "/etc/inboxpay/inboxpay.toml"


def cmd_list(args: argparse.Namespace) -> int:
    path = Path(args.config).absolute()
    data = config.read(path)
    partners = config.parse(data, path).partners
    source = "config" if "partners" in data else "defaults"
    if args.json:
        out = {"config": str(path), "source": source, "partners": [_json(p) for p in partners]}
        print(json.dumps(out, indent=2))
        return EXIT_OK
    if source == "defaults":
        print(f"{path} has no [[partners]]: the built-in defaults apply")
    elif partners:
        print(f"[[partners]] in {path}:")
    else:
        print(f"{path}: partners = [], no partners: the milter issues no cards")
        return EXIT_OK
    print(_table(partners))
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    new = Partner(
        id=args.id,
        name=args.name,
        sender_domains=tuple(args.sender_domain),
        invoice_url_hosts=tuple(args.invoice_url_host),
        processor=args.processor,
    )
    edit = _edited(args.config, lambda path: add_partner(path, new))
    if edit is None:
        return EXIT_USAGE
    added = edit.after[-1]  # as the loader reads it
    print(
        f"added partner {added.id} ({added.name}): sender domains "
        f"{', '.join(added.sender_domains)}; invoice URL hosts "
        f"{', '.join(added.invoice_url_hosts)}; processor {added.processor}"
    )
    print(TAKES_EFFECT)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    edit = _edited(args.config, lambda path: remove_partner(path, args.id))
    if edit is None:
        return EXIT_USAGE
    (gone,) = (p for p in edit.before if p.id == args.id)
    print(f"removed partner {gone.id} ({gone.name})")
    if not edit.after:
        print(
            "inboxpay: warning: no partners left (partners = []): the milter issues no cards "
            "until one is added",
            file=sys.stderr,
        )
    print(TAKES_EFFECT)
    return EXIT_OK


def _edited(config_path: str, edit: Callable[[Path], PartnersEdit]) -> PartnersEdit | None:
    """Run an edit; on a config error print every problem and that the file is unchanged."""
    path = Path(config_path).absolute()
    try:
        result = edit(path)
    except ConfigError as e:
        print_config_error(e)
        print(f"inboxpay: {path} not changed", file=sys.stderr)
        return None
    if result.wrote_defaults:
        ids = ", ".join(p.id for p in result.wrote_defaults)
        print(
            f"{path} had no [[partners]], so the built-in defaults applied: wrote them out "
            f"first ({ids}), because a [[partners]] list replaces them"
        )
    return result


def _json(p: Partner) -> dict[str, object]:
    return {
        "id": p.id,
        "name": p.name,
        "sender_domains": list(p.sender_domains),
        "invoice_url_hosts": list(p.invoice_url_hosts),
        "processor": p.processor,
    }


def _table(partners: tuple[Partner, ...]) -> str:
    rows = [("ID", "NAME", "SENDER DOMAINS", "INVOICE URL HOSTS", "PROCESSOR")]
    for p in partners:
        rows.append(
            (p.id, p.name, ", ".join(p.sender_domains), ", ".join(p.invoice_url_hosts), p.processor)
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def register(sub: Subparsers) -> None:
    p = command(
        sub,
        "partners",
        "list, add or remove the partners allowed to send payment requests ([[partners]])",
        f"inboxpay partners list --config {EXAMPLE_CONFIG}",
    )
    psub = p.add_subparsers(dest="partners_command", required=True, metavar="ACTION")

    c = command(
        psub,
        "list",
        "show the partners in force, and whether they come from the config or the defaults",
        f"inboxpay partners list --config {EXAMPLE_CONFIG} --json",
    )
    config_arg(c)
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(handler=cmd_list)

    c = command(
        psub,
        "add",
        "add a partner to the config (validated like the config; comments are kept)",
        "inboxpay partners add acme --name 'Acme Billing' --sender-domain billing.acme.example "
        f"--invoice-url-host pay.acme.example --config {EXAMPLE_CONFIG}",
    )
    c.add_argument("id", help="short lowercase id, written into each card")
    c.add_argument("--name", required=True, help="display name")
    c.add_argument(
        "--sender-domain",
        action="append",
        required=True,
        metavar="DOMAIN",
        help="a From domain (and its subdomains) that may send its payment requests; repeatable",
    )
    c.add_argument(
        "--invoice-url-host",
        action="append",
        required=True,
        metavar="HOST",
        help="an exact host the invoice link may point to; repeatable",
    )
    c.add_argument(
        "--processor",
        default=Partner.processor,
        help="the [processors.NAME] that charges its invoices (default: %(default)s)",
    )
    config_arg(c)
    c.set_defaults(handler=cmd_add)

    c = command(
        psub,
        "remove",
        "remove a partner from the config (the last one leaves partners = [], no cards)",
        f"inboxpay partners remove acme --config {EXAMPLE_CONFIG}",
    )
    c.add_argument("id", help="the partner's id")
    config_arg(c)
    c.set_defaults(handler=cmd_remove)
