"""Reading TOML tables with errors that name the key, and leftovers reported as unknown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from inboxpay.errors import ConfigError

T = TypeVar("T")

DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


class Section:
    """Reads one table, remembering which keys were used so leftovers can be reported."""

    def __init__(self, name: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{name}: expected a table")
        self.name = name
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        self.used.add(key)
        where = f"{self.name} {key}"
        if key not in self.data:
            if default is None:
                raise ConfigError(f"{where}: missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.get(key, list, list(default) if default is not None else None)
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.name} {key}: expected a list of strings")
        return tuple(value)

    def check(self, where: str, ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{self.name} {where}: {message}")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.name} {unknown[0]}: unknown key")


def table(root: Section, key: str, required: bool = False) -> dict[str, Any]:
    root.used.add(key)
    if key not in root.data:
        if required:
            raise ConfigError(f"[{key}]: missing section")
        return {}
    value = root.data[key]
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}]: expected a table")
    return value


def path(s: Section, key: str, base: Path, default: str | None = None) -> Path:
    value = s.get(key, str, default)
    s.check(key, value != "", "empty path")
    p = Path(value)
    return p if p.is_absolute() else base / p


def domains(s: Section, key: str) -> tuple[str, ...]:
    values = tuple(v.lower().rstrip(".") for v in s.strings(key))
    s.check(key, len(values) > 0, "needs at least one domain")
    for v in values:
        s.check(key, bool(DOMAIN.match(v)), f"not a domain name: {v!r}")
    return values
