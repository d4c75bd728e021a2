"""Editing an array of tables (``[[name]]``) with tomlkit, keeping comments where they belong.

tomlkit keeps every comment and blank line. In its model, what stands between one table
and the next header belongs to the table above. Comments right under a table's last key
describe that table and go with it; from the first blank line on ("the gap") they
introduce what follows, so the gap is moved, never deleted, when the table above it is
removed or a new table is added after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import tomlkit
from tomlkit.items import AoT, Comment, Item, Key, Null, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

_Body = list[tuple[Key | None, Item]]


def new_list(doc: TOMLDocument, key: str, comments: Sequence[str]) -> AoT:
    """An empty ``[[key]]`` list at the end of the document, after a blank line and comments."""
    while not doc.as_string().endswith("\n\n"):
        doc.add(tomlkit.nl())
    for text in comments:
        doc.add(tomlkit.comment(text))
    aot = tomlkit.aot()
    doc.append(key, aot)
    return aot


def append_table(aot: AoT, table: Table) -> None:
    if len(aot):
        last = aot[-1]
        gap = _take_gap(last)
        aot.append(table)
        if "\n" not in table.trivia.indent:  # tomlkit separates the entries of a new list itself
            last.add(tomlkit.nl())  # a blank line between entries
        _put_gap(table, gap)  # what introduced the next section still does
    else:
        aot.append(table)


def remove_table(doc: TOMLDocument, key: str, i: int, empty: Item) -> None:
    """Remove entry ``i`` of the document's ``[[key]]``; ``empty`` replaces the last one.

    (An array of tables with no entry would vanish from the file.)
    """
    aot = doc.item(key)
    assert isinstance(aot, AoT)
    last = i == len(aot) - 1
    gap = _take_gap(aot[i])
    # Blank lines between two entries only separated them; after the last they also
    # separate the list from what follows, and comments always stay.
    if not last and not any(isinstance(item, Comment) for _, item in gap):
        gap = []
    item_above = _item_above(doc, aot)
    above = aot[i - 1] if i > 0 else _last_table(item_above)
    if above is None and i == 0 and item_above is None:
        while gap and isinstance(gap[0][1], Whitespace):
            gap = gap[1:]  # the file should not start with a blank line
    below: Table | None = None
    if len(aot) == 1:
        doc.remove(key)
        doc.add(key, empty)
    else:
        indent = aot[i].trivia.indent
        del aot[i]
        if i < len(aot):
            below = aot[i]
            below.trivia.indent = indent  # it takes the removed header's place
    if above is not None:
        _put_gap(above, gap)
    else:
        _put_above(doc, below, gap)


def _take_gap(table: Table) -> _Body:
    """Remove and return the table's trailing comments and blank lines from its first blank line."""
    body = table.value.body
    start = len(body)
    while start > 0 and body[start - 1][0] is None and _is_trivia(body[start - 1][1]):
        start -= 1
    for j in range(start, len(body)):
        if isinstance(body[j][1], Whitespace):
            gap = body[j:]
            del body[j:]  # only unnamed items at the end: no key's index moves
            return gap
    return []


def _put_gap(table: Table, gap: _Body) -> None:
    items = [item for _, item in gap if not isinstance(item, Null)]
    body = table.value.body
    if items and isinstance(items[0], Whitespace) and body and isinstance(body[-1][1], Whitespace):
        items = items[1:]  # one blank line is enough
    for item in items:
        table.raw_append(None, item)


def _is_trivia(item: Item) -> bool:
    return isinstance(item, Comment | Whitespace | Null)


def _item_above(doc: TOMLDocument, aot: AoT) -> Item | None:
    """What the document has right above the list's first header (None: nothing)."""
    above: Item | None = None
    for _, item in doc.body:
        if item is aot:
            break
        if not isinstance(item, Null):
            above = item
    return above


def _last_table(item: Item | None) -> Table | None:
    """The table whose body ``item`` ends with; None for root-level keys or comments."""
    if isinstance(item, AoT):
        return _last_table(item[-1]) if len(item) else None
    if isinstance(item, Table):
        named = [v for k, v in item.value.body if k is not None]
        if named and isinstance(named[-1], Table | AoT):
            return _last_table(named[-1])  # a sub-table renders last
        return item
    return None


def _put_above(doc: TOMLDocument, below: Table | None, gap: _Body) -> None:
    """Only when no table is above the list: the gap's comments go in front of the next header."""
    if not any(isinstance(item, Comment) for _, item in gap):
        return
    below = below or _first_table(doc.body)
    if below is None:
        for _, item in gap:
            doc.add(item)  # nothing follows: the end of the document
    else:
        text = "".join(item.as_string() for _, item in gap)
        below.trivia.indent = text + below.trivia.indent


def _first_table(body: _Body) -> Table | None:
    for _, item in body:
        if isinstance(item, AoT) and len(item):
            return item[0]
        if isinstance(item, Table):
            # A super table ([a.b] without [a]) has no header of its own.
            return _first_table(item.value.body) if item.is_super_table() else item
    return None
