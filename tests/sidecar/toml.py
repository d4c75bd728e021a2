"""Just enough of a TOML writer to edit the config ``inboxpay init`` writes: read it with
tomllib, change the dict, write it back. Tables, arrays of tables, strings, numbers,
booleans and arrays of those."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _table(path: list[str], data: Mapping[str, Any], out: list[str]) -> None:
    for k, v in data.items():
        if not isinstance(v, Mapping) and not _is_table_array(v):
            out.append(f"{_key(k)} = {_value(v)}")
    for k, v in data.items():
        here = [*path, _key(k)]
        if isinstance(v, Mapping):
            out.append(f"\n[{'.'.join(here)}]")
            _table(here, v, out)
        elif _is_table_array(v):
            for entry in v:
                out.append(f"\n[[{'.'.join(here)}]]")
                _table(here, entry, out)


def dumps(data: Mapping[str, Any]) -> str:
    out: list[str] = []
    _table([], data, out)
    return "\n".join(out).lstrip("\n") + "\n"
