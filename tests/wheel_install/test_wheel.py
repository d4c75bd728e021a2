"""The wheel built from the tree works on its own: installed into a fresh venv, away from
the repository, ``inboxpay init`` writes a config that checks, and ``inboxpay dev-mta``
finds its Postfix snippet as package data.

Offline and fast: the wheel is built without build isolation (the test extras bring a
setuptools that builds it), and the fresh venv gets its dependencies from this venv's
site-packages through a ``.pth`` line, which adds the folder but runs none of its own
``.pth`` files, so the repository's editable install stays out of the way.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout


def test_the_wheel_installs_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    # Build from a copy of the tree, so the repository gets no build/ or egg-info.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copytree(
        ROOT / "inboxpay",
        source / "inboxpay",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    run(
        *pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", ".", cwd=source
    )
    (wheel,) = (tmp_path / "dist").glob("inboxpay-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = run(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
    )
    ours = [p for p in {*site.getsitepackages(), sysconfig.get_path("purelib")} if Path(p).is_dir()]
    Path(purelib.strip(), "dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)

    # Away from the repository: the installed package, not the tree.
    where = run(python, "-c", "import inboxpay; print(inboxpay.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(venv), where
    inboxpay = venv / "bin" / "inboxpay"

    help_text = run(inboxpay, "dev-mta", "--help", cwd=tmp_path)
    assert "--listen HOST:PORT" in help_text and "127.0.0.1:2525" in help_text

    out = run(inboxpay, "init", "--dir", tmp_path / "dev", cwd=tmp_path)
    config = tmp_path / "dev" / "inboxpay.toml"
    assert f"wrote {config}" in out
    assert (tmp_path / "dev" / "keys" / "card-signing.pem").is_file()
    assert ": ok (" in run(inboxpay, "config", "check", "--config", config, cwd=tmp_path)

    # What broke dev-mta in an installed wheel: the snippet, now package data.
    snippet = run(
        python,
        "-c",
        "from inboxpay.dev.mta import milter_snippet; print(milter_snippet('inet:127.0.0.1:1'))",
        cwd=tmp_path,
    )
    assert "\nsmtpd_milters = inet:127.0.0.1:1\n" in snippet
