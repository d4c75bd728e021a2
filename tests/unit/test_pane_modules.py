"""The pane's JavaScript modules: every one the pane imports is served, as JavaScript,
under the strict CSP, and ships as package data."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

from inboxpay.sidecar.routes.pane import PANE_ASSETS, PANE_MODULES, csp, static_response
from tests.support.scripts import banned_uses

STATIC = resources.files("inboxpay.sidecar").joinpath("static")
IMPORT = re.compile(r'^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)";', re.M | re.S)


def imports(name: str) -> list[str]:
    return IMPORT.findall(STATIC.joinpath(name).read_text("utf-8"))


def test_the_pane_imports_only_the_modules_it_serves() -> None:
    reached: set[str] = set()
    todo = ["pane.js"]
    while todo:
        name = todo.pop()
        reached.add(name)
        for target in imports(name):
            assert target.startswith("./") and target.endswith(".js"), (name, target)
            assert target[2:] in PANE_MODULES, (name, target)
            if target[2:] not in reached:
                todo.append(target[2:])
    # Every module served is one the pane loads, and every one it loads is served.
    assert reached == set(PANE_MODULES)
    assert set(PANE_MODULES) <= set(PANE_ASSETS)


def test_each_module_is_served_as_javascript_under_the_strict_csp() -> None:
    policy = csp(["https://mail.example"])
    for name in PANE_MODULES:
        response = static_response(name, policy)
        assert response.content_type == "text/javascript", name
        assert response.charset == "utf-8"
        assert response.headers["Content-Security-Policy"] == policy
        assert "script-src 'self'" in policy  # same-origin modules, nothing inline
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.text == STATIC.joinpath(name).read_text("utf-8")


def test_no_module_uses_what_the_csp_or_the_secrets_forbid() -> None:
    for name in PANE_MODULES:
        assert banned_uses(STATIC.joinpath(name).read_text("utf-8")) == [], name


def test_the_modules_ship_as_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["inboxpay"]
    for name in PANE_ASSETS:
        assert any(fnmatch(f"sidecar/static/{name}", glob) for glob in globs), name
