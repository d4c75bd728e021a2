"""Reading TOML tables with errors that name the key, and leftovers reported as unknown.

A config is checked whole: each problem is recorded in a shared :class:`Errors` and
reading goes on, so one run reports every bad key. A key that is missing or has the
wrong type gives a placeholder value instead (its default, or an empty one) and is not
checked further; anything that cannot go on raises :class:`ConfigError`, and
:meth:`Errors.guard` records it and skips the rest of that section or entry only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from inboxpay.errors import ConfigError

T = TypeVar("T")

DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


class Errors:
    """Every problem found in one config, in the order found, each ``"WHERE: message"``.

    ``collect=False`` raises at the first problem instead, for a section read on its own.
    """

    def __init__(self, collect: bool = True) -> None:
        self.collect = collect
        self.messages: list[str] = []
        self.faulty: set[str] = set()  # the keys and sections ("[dns] port", "[dns]") named

    def add(self, where: str, message: str) -> None:
        text = f"{where}: {message}"
        if not self.collect:
            raise ConfigError(text)
        self.messages.append(text)
        self.faulty.add(where)

    def involve(self, *where: str) -> bool:
        """Whether any problem was found in one of these keys or sections."""
        return not self.faulty.isdisjoint(where)

    @contextmanager
    def guard(self, where: str) -> Iterator[None]:
        """Read one section or entry; an error that stops it is recorded and reading goes on."""
        try:
            yield
        except ConfigError as e:
            if not self.collect:
                raise
            self.messages.extend(e.errors)
            self.faulty.add(where)

    def attempt(self, where: str, fallback: T, read: Callable[[], T]) -> T:
        """``read()``, or ``fallback`` when it stopped on an error (recorded)."""
        with self.guard(where):
            return read()
        return fallback

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigError(*self.messages)


class Section:
    """Reads one table, remembering which keys were used so leftovers can be reported.

    Without ``errors`` the first problem raises; with them, problems are recorded and the
    owner of ``errors`` must call :meth:`Errors.raise_if_any` before using the values.
    """

    def __init__(self, name: str, data: object, errors: Errors | None = None) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{name}: expected a table")
        self.name = name
        self.data: dict[str, Any] = data
        self.used: set[str] = set()
        self.errors = errors if errors is not None else Errors(collect=False)
        # Keys that were missing or mistyped: their placeholder values are not checked.
        self.unusable: set[str] = set()

    def sub(self, name: str, data: object) -> Section:
        """A nested table or array entry, reporting into the same errors."""
        return Section(name, data, self.errors)

    def error(self, key: str, message: str) -> None:
        self.errors.add(f"{self.name} {key}".rstrip(), message)

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                return self._unusable(key, "missing", kind())
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            placeholder = default if default is not None else kind()
            return self._unusable(key, f"expected {kind.__name__}, got {value!r}", placeholder)
        return value

    def strings(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.get(key, list, list(default) if default is not None else None)
        if not all(isinstance(v, str) for v in value):
            return self._unusable(key, "expected a list of strings", default or ())
        return tuple(value)

    def _unusable(self, key: str, message: str, placeholder: T) -> T:
        self.error(key, message)
        self.unusable.add(key)
        return placeholder

    def check(self, key: str, ok: bool, message: str) -> bool:
        """Record ``message`` unless ``ok``; True when the value passed (so code may rely on it)."""
        if key in self.unusable:
            return False  # already reported; its placeholder proves nothing
        if not ok:
            self.error(key, message)
        return ok

    def finish(self) -> None:
        for key in sorted(set(self.data) - self.used):
            self.error(key, "unknown key")


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
    if not s.check(key, "\0" not in value, "a path cannot hold a NUL character"):
        value = value.replace("\0", "")  # a placeholder: the error is recorded
    p = Path(value)
    return p if p.is_absolute() else base / p


def domains(s: Section, key: str) -> tuple[str, ...]:
    values = tuple(v.lower().rstrip(".") for v in s.strings(key))
    s.check(key, len(values) > 0, "needs at least one domain")
    for v in values:
        s.check(key, bool(DOMAIN.match(v)), f"not a domain name: {v!r}")
    return values
