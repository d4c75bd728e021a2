"""Adding and removing ``[[partners]]`` entries in a config file, keeping its comments
(:mod:`inboxpay.config.tomltables` says where they go).

The edited text is parsed again by the loader before it replaces the file (atomically,
keeping owner and mode): an edit that would leave the config invalid changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, Table
from tomlkit.toml_document import TOMLDocument

from inboxpay.atomicfile import locked, replace_file
from inboxpay.config import DEFAULT_PARTNERS, Partner, decode, parse
from inboxpay.config.tomltables import append_table, new_list, remove_table
from inboxpay.errors import ConfigError, InboxPayError

_Change = Callable[[TOMLDocument, tuple[Partner, ...]], None]

_LIST_COMMENT = "Partners allowed to send payment requests (inboxpay partners)."
_DEFAULTS_COMMENT = "This list replaces the built-in defaults, so they are written out here."
_NONE_COMMENT = "no partners: the milter issues no cards (inboxpay partners add)"


@dataclass(frozen=True)
class PartnersEdit:
    path: Path
    before: tuple[Partner, ...]
    after: tuple[Partner, ...]
    # The built-in partners, written out first because the config had no list of its own.
    wrote_defaults: tuple[Partner, ...]


def add_partner(path: Path, new: Partner) -> PartnersEdit:
    """Append ``new``; ConfigError (file unchanged) for a taken id or an invalid entry."""

    def change(doc: TOMLDocument, before: tuple[Partner, ...]) -> None:
        if new.id in {p.id for p in before}:
            raise ConfigError(f"[[partners]] id: {new.id!r} is already a partner")
        append_table(_partner_list(doc), _table(new))

    return _rewrite(path, change)


def remove_partner(path: Path, partner_id: str) -> PartnersEdit:
    """Remove the entry with ``partner_id``; the last one leaves ``partners = []`` (no cards)."""

    def change(doc: TOMLDocument, before: tuple[Partner, ...]) -> None:
        ids = [p.id for p in before]
        if partner_id not in ids:
            known = ", ".join(ids) or "none"
            raise ConfigError(f"[[partners]] id: no partner {partner_id!r} (partners: {known})")
        _partner_list(doc)  # the built-in ones written out, if they were in force
        remove_table(doc, "partners", ids.index(partner_id), _no_partners())

    return _rewrite(path, change)


def _rewrite(path: Path, change: _Change) -> PartnersEdit:
    path = Path(path).absolute()
    real = path.resolve()  # a symlinked config: replace the file, not the link
    try:
        with locked(real.parent):  # two edits at once would lose one of them
            return _rewrite_locked(path, real, change)
    except PermissionError as e:
        raise InboxPayError(
            f"{path}: {e.strerror} (run it as the config's owner); not changed"
        ) from e
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from e


def _rewrite_locked(path: Path, real: Path, change: _Change) -> PartnersEdit:
    try:
        original = real.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from e
    old_data = decode(original, path)
    before = parse(old_data, path).partners  # a config that is already broken is not edited
    try:
        doc = tomlkit.parse(original.decode("utf-8"))
    except TOMLKitError as e:
        raise ConfigError(f"{path}: {e}") from e
    wrote_defaults = DEFAULT_PARTNERS if "partners" not in old_data else ()
    change(doc, before)
    text = doc.as_string().encode("utf-8")
    new_data = decode(text, path)
    after = parse(new_data, path).partners  # the loader's own validation, every error
    _only_partners_changed(old_data, new_data, path)
    try:
        if real.read_bytes() != original:  # an editor saved meanwhile: do not undo that
            raise InboxPayError(f"{path}: changed while being edited; not changed, try again")
        replace_file(real, text, like=os.stat(real))
    except OSError as e:
        raise InboxPayError(f"{path}: cannot write: {e.strerror}; not changed") from e
    return PartnersEdit(path, before, after, wrote_defaults)


def _only_partners_changed(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    # A safety net under the comment moves: no other setting may change meaning.
    def rest(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "partners"}

    if rest(old) != rest(new):
        raise InboxPayError(
            f"{path}: editing [[partners]] here would change other settings; "
            "not changed, edit the file by hand"
        )


def _table(p: Partner) -> Table:
    t = tomlkit.table()
    t.add("id", p.id)
    t.add("name", p.name)
    t.add("sender_domains", list(p.sender_domains))
    t.add("invoice_url_hosts", list(p.invoice_url_hosts))
    if p.processor != Partner.processor:  # the loader's default stays implicit, as `init` writes
        t.add("processor", p.processor)
    if p.signed_request_keys:
        t.add("signed_request_keys", [str(k) for k in p.signed_request_keys])
    return t


def _partner_list(doc: TOMLDocument) -> AoT:
    """The ``[[partners]]`` tables; the built-in ones written out first if the config had none."""
    if "partners" not in doc:
        aot = new_list(doc, "partners", [_LIST_COMMENT, _DEFAULTS_COMMENT])
        for p in DEFAULT_PARTNERS:
            append_table(aot, _table(p))
        return aot
    item = doc.item("partners")
    if isinstance(item, AoT):
        return item
    if isinstance(item, Array) and len(item) == 0:  # `partners = []`: none, on purpose
        doc.remove("partners")
        return new_list(doc, "partners", [_LIST_COMMENT])
    raise ConfigError(
        "[[partners]]: written in a form this command cannot edit (an inline array?); "
        "use [[partners]] tables, or edit the file by hand"
    )


def _no_partners() -> Array:
    # What removing the last entry leaves: an empty [[partners]] would vanish from the
    # file, and the built-in defaults would apply again.
    none = tomlkit.array()
    none.comment(_NONE_COMMENT)
    none.trivia.comment_ws = "  "
    return none
