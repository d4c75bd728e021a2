"""The package's imports point down: a module imports only its own component and the
components of lower layers (issue 13, item 3).

Every ``import`` and ``from ... import`` is counted, at module level or inside a
function, ``TYPE_CHECKING`` blocks included. Components in one layer are siblings that
must not import each other (the milter and the sidecar, for instance). A new top-level
module must be placed in a layer, or ``test_every_module_has_a_layer`` fails.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path

import inboxpay

#: Lowest first. A component is a module or package of ``inboxpay`` (the longest name
#: that matches counts: ``processor.sandbox`` is not ``processor``); ``""`` is the
#: package's own ``__init__`` (``__version__``).
LAYERS: tuple[tuple[str, ...], ...] = (
    # The root of the exception tree, under every component (deadline, addresses, ...).
    ("errors",),
    ("", "atomicfile", "logs", "deadline", "message", "charsets"),
    ("addresses", "currency", "dns", "keyfile"),
    ("card", "vault", "orgs", "auth", "invoice"),
    ("config",),
    ("store",),
    ("processor",),
    ("milter", "sidecar"),
    # Development tooling: only the command imports it (and the one exception below).
    ("dev", "processor.sandbox"),
    ("cli",),
    ("__main__",),
)

#: Upward edges allowed, module to module, each with its reason. Keep this short.
ALLOWED: Mapping[tuple[str, str], str] = {
    ("inboxpay.sidecar.app", "inboxpay.dev.demo"): (
        "the demo inbox's routes are mounted by create_app only when [sidecar] "
        "demo_maildir is set, imported lazily inside that branch; the tests build the "
        "app with create_app(config), so routing it through the cli would change them"
    ),
}

PACKAGE = Path(inboxpay.__file__).parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package modules ``source`` imports, anywhere in it."""
    top = module.split(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {name for name in found if name == top or name.startswith(top + ".")}


def package_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def component(module: str, layers: Sequence[Sequence[str]]) -> str | None:
    """The longest declared name ``module`` is or is inside; None when there is none."""
    inner = module.split(".", 1)[1] if "." in module else ""
    matches = [
        name
        for layer in layers
        for name in layer
        if inner == name or (name and inner.startswith(name + "."))
    ]
    return max(matches, key=len) if matches else None


def violations(
    graph: Mapping[str, set[str]],
    layers: Sequence[Sequence[str]],
    allowed: Mapping[tuple[str, str], str],
) -> list[str]:
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    found = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            cs, cd = component(src, layers), component(dst, layers)
            if cs is None or cd is None:
                found.append(f"{src} -> {dst}: not in any layer")
            elif cs != cd and rank[cd] >= rank[cs] and (src, dst) not in allowed:
                how = "a sibling" if rank[cd] == rank[cs] else "a higher layer"
                found.append(f"{src} -> {dst}: imports {how} ({cd or 'inboxpay'})")
    return found


def test_imports_point_down() -> None:
    assert violations(package_graph(PACKAGE), LAYERS, ALLOWED) == []


def test_every_module_has_a_layer() -> None:
    declared = {name for layer in LAYERS for name in layer}
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.parent.name for p in PACKAGE.glob("*/__init__.py")
    }
    assert tops - {"__init__"} <= declared


def test_allowed_exceptions_are_still_needed() -> None:
    graph = package_graph(PACKAGE)
    assert [edge for edge in ALLOWED if edge[1] not in graph.get(edge[0], set())] == []


SYNTHETIC = (("", "low"), ("mid",), ("left", "right"), ("top",))


def test_checker_passes_a_graph_that_points_down() -> None:
    graph = {
        "pkg.top": {"pkg.left", "pkg.low", "pkg"},
        "pkg.left.a": {"pkg.left.b", "pkg.mid"},
        "pkg.mid": {"pkg.low"},
    }
    assert violations(graph, SYNTHETIC, {}) == []


def test_checker_fails_a_lower_layer_importing_a_higher_one() -> None:
    graph = {"pkg.mid": {"pkg.top"}, "pkg.low": {"pkg.left.a"}}
    assert violations(graph, SYNTHETIC, {}) == [
        "pkg.low -> pkg.left.a: imports a higher layer (left)",
        "pkg.mid -> pkg.top: imports a higher layer (top)",
    ]
    assert violations(graph, SYNTHETIC, {("pkg.mid", "pkg.top"): "why"}) == [
        "pkg.low -> pkg.left.a: imports a higher layer (left)"
    ]


def test_checker_fails_siblings_importing_each_other() -> None:
    graph = {"pkg.left": {"pkg.right.x"}}
    assert violations(graph, SYNTHETIC, {}) == [
        "pkg.left -> pkg.right.x: imports a sibling (right)"
    ]


def test_checker_reads_function_level_and_relative_imports(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "mid").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "top.py").write_text("")
    (root / "low.py").write_text("def f() -> None:\n    from pkg import top\n")
    (root / "mid" / "__init__.py").write_text("from . import b\n")
    (root / "mid" / "b.py").write_text("from ..top import x\nimport pkg.low\n")
    graph = package_graph(root)
    assert graph["pkg.low"] == {"pkg.top"}
    assert graph["pkg.mid"] == {"pkg.mid.b"}
    assert graph["pkg.mid.b"] == {"pkg.top", "pkg.low"}
    assert violations(graph, (*SYNTHETIC[:2], ("top",)), {}) == [
        "pkg.low -> pkg.top: imports a higher layer (top)",
        "pkg.mid.b -> pkg.top: imports a higher layer (top)",
    ]
