"""One exception tree: every error InboxPay defines hangs from InboxPayError, no two share
a name, and the drawing in ``inboxpay/errors.py`` shows each one under its parent
(issue 13, item 4).

Every module of the package is imported; the only one left out is ``inboxpay.__main__``,
which runs the command when imported. A class whose name starts with "_" is private
control flow: it may stay outside the tree, but the drawing must still name it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import inboxpay
from inboxpay import errors
from inboxpay.errors import InboxPayError

PACKAGE = Path(inboxpay.__file__).parent
NOT_IMPORTED = {"inboxpay.__main__"}

#: "    Name (module/path.py)..." in the docstring: indentation says the parent.
_LINE = re.compile(r"^(?P<indent> {4,})(?P<name>\w+) \((?P<where>[\w/]+\.py)\)")


def _modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(inboxpay.__path__, "inboxpay.")
        if info.name not in NOT_IMPORTED
    ]
    for name in names:
        importlib.import_module(name)
    return ["inboxpay", *names]


def _where(cls: type) -> str:
    path = Path(inspect.getfile(cls)).relative_to(PACKAGE)
    return path.as_posix()


def defined_exceptions() -> list[type[BaseException]]:
    """Every exception class defined (not merely imported) in an inboxpay module."""
    found: dict[type[BaseException], None] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found[value] = None
    return list(found)


def drawn_tree(doc: str) -> dict[str, tuple[str, str | None]]:
    """name -> (module path, parent's name) as the docstring draws them."""
    tree: dict[str, tuple[str, str | None]] = {}
    stack: list[tuple[int, str]] = []  # (indent, name) of the open ancestors
    for line in doc.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        indent, name = len(match["indent"]), match["name"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        assert name not in tree, f"{name} is drawn twice"
        tree[name] = (match["where"], stack[-1][1] if stack else None)
        stack.append((indent, name))
    return tree


def test_the_package_defines_exceptions_to_check() -> None:
    names = {cls.__name__ for cls in defined_exceptions()}
    assert {"InboxPayError", "ApiError", "StoreError", "ProcessorError"} <= names


def test_every_public_exception_derives_from_inboxpay_error() -> None:
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in defined_exceptions()
        if not cls.__name__.startswith("_") and not issubclass(cls, InboxPayError)
    ]
    assert outside == []


def test_no_two_public_exceptions_share_a_name() -> None:
    seen: dict[str, list[str]] = {}
    for cls in defined_exceptions():
        if not cls.__name__.startswith("_"):
            seen.setdefault(cls.__name__, []).append(cls.__module__)
    assert {name: where for name, where in seen.items() if len(where) > 1} == {}


def test_the_docstring_draws_every_exception_under_its_parent() -> None:
    assert errors.__doc__ is not None
    tree = drawn_tree(errors.__doc__)
    classes = defined_exceptions()
    assert sorted(tree) == sorted(cls.__name__ for cls in classes)
    for cls in classes:
        where, parent = tree[cls.__name__]
        assert where == _where(cls), f"{cls.__name__} lives in {_where(cls)}, drawn in {where}"
        if cls.__name__.startswith("_") or cls is InboxPayError:
            assert parent is None, f"{cls.__name__} is drawn inside the tree"
            continue
        bases = [b.__name__ for b in cls.__bases__ if issubclass(b, InboxPayError)]
        assert parent in bases, f"{cls.__name__} is drawn under {parent}, derives from {bases}"
