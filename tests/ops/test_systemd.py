"""The systemd units: they verify, they confine, and the confined services still work.

There is no running systemd here, so the units are checked three ways: by
systemd's own offline tools (``verify``, ``security --offline``, and
``sysusers``/``tmpfiles`` with ``--root``), by reading them, and by running each
ExecStart= the way the unit would (its user, umask, no new privileges, and the
seccomp rules of SystemCallFilter=, MemoryDenyWriteExecute= and
RestrictAddressFamilies=; see confine.py) through a real payment.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e import checks, rawmime
from e2e.harness import Mta
from e2e.milterproc import CardKeys
from e2e.postfix import PrivatePostfix, milter_warnings
from e2e.procs import accepts_tcp, free_port, process_exited, stop, wait_until
from e2e.scenarios import from_xero, signed_xero_invoice
from e2e.world import AUTHSERV_ID, BOB, RECIPIENTS, DkimKey
from joserfc.jwk import OKPKey

from inboxpay import config as config_module
from inboxpay.card import keys
from inboxpay.card.header import CardVerifier
from inboxpay.sidecar.auth import load_issuer_key, mint

from . import units
from .confine import Spec
from .deploy import Deployment, account, confinement, environment, require

CONFINE = Path(__file__).resolve().parent / "confine.py"
PROBE = Path(__file__).resolve().parent / "probe.py"
SUBCOMMANDS = {
    units.MILTER: "milter",
    units.SIDECAR: "sidecar",
    units.SANDBOX: "processor-sandbox",
}
#: What every service unit must say, exactly.
HARDENING = {
    "User": "inboxpay",
    "Restart": "on-failure",
    "RestartPreventExitStatus": "2",
    "StateDirectory": "inboxpay",
    "StateDirectoryMode": "0700",
    "UMask": "0077",
    "LimitCORE": "0",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "PrivateMounts": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "RemoveIPC": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
}
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 (locked down) .. 10 (exposed)


def analyze() -> str:
    return require("systemd-analyze", "apt-get install systemd")


def spec_of(d: Deployment, unit: units.Unit) -> Spec:
    return confinement(unit, lambda name: account(d.root, name))


def confined(spec: Spec, argv: list[str]) -> list[str]:
    """``argv`` under ``spec``, as systemd would start it."""
    return [sys.executable, str(CONFINE), spec.to_json(), "--", *argv]


def run_confined(spec: Spec, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        confined(spec, argv),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=environment(),
        cwd="/",  # systemd's default WorkingDirectory=
    )


# --- what systemd's own tools say ---


def test_units_pass_systemd_analyze_verify(deployment: Deployment) -> None:
    rendered = [str(deployment.unit_dir / name) for name in units.SERVICES]
    # The directory of each unit is on the search path, so the drop-in is read too.
    done = subprocess.run(
        [analyze(), "verify", "--man=no", *rendered],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = done.stdout + done.stderr
    ours = [line for line in output.splitlines() if "inboxpay" in line]
    assert done.returncode == 0 and ours == [], f"systemd-analyze verify:\n{output}"


def test_a_broken_unit_is_caught_by_the_same_check(deployment: Deployment, tmp_path: Path) -> None:
    # The check above can fail: a misspelt key only warns (exit 0), so we read the output.
    bad = tmp_path / units.SIDECAR
    text = (deployment.unit_dir / units.SIDECAR).read_text("utf-8")
    bad.write_text(text.replace("NoNewPrivileges=", "NoNewPrivilege="), "utf-8")
    done = subprocess.run(
        [analyze(), "verify", "--man=no", str(bad)], capture_output=True, text=True, check=False
    )
    assert "Unknown key 'NoNewPrivilege'" in done.stdout + done.stderr


@pytest.mark.parametrize("name", units.SERVICES)
def test_exposure_level(deployment: Deployment, name: str) -> None:
    done = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(deployment.unit_dir / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, f"no exposure level in:\n{done.stdout}{done.stderr}"
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


# --- what the files say ---


@pytest.mark.parametrize("name", units.SERVICES)
def test_hardening_directives(name: str) -> None:
    unit = units.parse(units.SYSTEMD / name)
    got = {key: unit.value("Service", key) for key in HARDENING}
    assert got == HARDENING, f"{name}: {got}"
    assert unit.values("Service", "SystemCallFilter") == [
        "@system-service",
        "~@privileged @resources",
    ]
    assert unit.value("Service", "RestartSec"), f"{name}: no RestartSec="
    # StateDirectory= is the one writable place; ReadWritePaths= only comes with the drop-in.
    assert unit.values("Service", "ReadWritePaths") == [], name
    assert unit.exec_start() == [
        "/usr/local/bin/inboxpay",
        SUBCOMMANDS[name],
        "--config",
        "/etc/inboxpay/inboxpay.toml",
    ]
    assert unit.value("Install", "WantedBy") == "multi-user.target"


def test_sandbox_unit_says_development_only() -> None:
    text = (units.SYSTEMD / units.SANDBOX).read_text("utf-8")
    assert text.startswith("# DEVELOPMENT ONLY.")
    assert "development only" in (
        units.parse(units.SYSTEMD / units.SANDBOX).value("Unit", "Description") or ""
    )


def test_postfix_socket_dropin() -> None:
    dropin = units.parse(units.SYSTEMD / units.POSTFIX_DROPIN)
    assert dropin.sections == {
        "Service": {"ReadWritePaths": ["/var/spool/postfix/inboxpay"], "UMask": ["0007"]}
    }


@pytest.mark.parametrize("name", [*units.SERVICES, units.POSTFIX_DROPIN])
def test_only_install_paths_are_named(name: str) -> None:
    # Rendering moves exactly these; any other path would point into the host in the tests.
    paths = units.absolute_paths(units.SYSTEMD / name)
    assert paths, name
    assert paths <= set(units.INSTALL_PATHS), f"{name} names {paths - set(units.INSTALL_PATHS)}"


def test_rendered_paths_exist(deployment: Deployment) -> None:
    root = str(deployment.root)
    names = [*units.SERVICES, units.POSTFIX_DROPIN_AS]
    for name in names:
        for path in units.absolute_paths(deployment.unit_dir / name):
            assert path.startswith(root), f"{name}: {path} not rendered under {root}"
            assert Path(path).exists(), f"{name}: {path} does not exist"
    for name in units.SERVICES:
        binary = Path(deployment.unit(name).exec_start()[0])
        assert binary.is_file() and binary.stat().st_mode & 0o111, f"{binary} not executable"
        state = (
            deployment.root
            / "var/lib"
            / (deployment.unit(name).value("Service", "StateDirectory") or "")
        )
        assert state == deployment.state, f"{name}: StateDirectory= is not the tmpfiles one"


def _mode_owner(path: Path) -> tuple[str, int, int]:
    st = path.lstat()
    return oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid


def test_sysusers_and_tmpfiles_layout(deployment: Deployment) -> None:
    d, uid, gid = deployment, deployment.user.uid, deployment.user.gid
    assert account(d.root, "inboxpay").name == "inboxpay"
    passwd = (d.root / "etc/passwd").read_text("utf-8")
    assert f"inboxpay:x:{uid}:{gid}:" in passwd and passwd.rstrip().endswith("/usr/sbin/nologin")
    assert _mode_owner(d.root / "etc/inboxpay") == ("0o750", 0, gid)
    assert _mode_owner(d.config) == ("0o640", 0, gid)
    assert _mode_owner(d.root / "etc/inboxpay/keys") == ("0o700", uid, gid)
    key_files = sorted((d.root / "etc/inboxpay/keys").iterdir())
    assert len(key_files) >= 7, key_files
    for key in key_files:
        assert _mode_owner(key) == ("0o600", uid, gid), key
    assert _mode_owner(d.state) == ("0o700", uid, gid)
    assert _mode_owner(d.socket.parent) == ("0o2750", uid, d.postfix_gid)


def test_service_user_reads_its_keys_and_nobody_else_does(deployment: Deployment) -> None:
    milter = deployment.unit(units.MILTER)
    binary, config = milter.exec_start()[0], str(deployment.config)
    check = [binary, "config", "check", "--config", config]
    spec = spec_of(deployment, milter)
    done = run_confined(spec, check)
    assert done.returncode == 0 and ": ok (" in done.stdout, done.stdout + done.stderr

    nobody = dataclasses.replace(spec, uid=65534, gid=65534)
    done = run_confined(nobody, check)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Permission denied" in done.stderr, done.stderr


@pytest.mark.parametrize("name", units.SERVICES)
def test_exec_start_runs(deployment: Deployment, name: str) -> None:
    unit = deployment.unit(name)
    binary, subcommand = unit.exec_start()[:2]
    done = run_confined(spec_of(deployment, unit), [binary, subcommand, "--help"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"usage: inboxpay {SUBCOMMANDS[name]}" in done.stdout, done.stdout


def test_the_emulated_confinement_refuses_what_the_unit_forbids(deployment: Deployment) -> None:
    # Proves the emulation is not a no-op: each line succeeds for the same user unconfined.
    spec = spec_of(deployment, deployment.unit(units.SIDECAR))
    python = str(deployment.root / "opt/inboxpay/bin/python")
    free = dataclasses.replace(
        spec,
        umask=0o022,
        allowed_syscalls=None,
        native_only=False,
        memory_deny_write_execute=False,
        address_families=None,
    )
    results = {}
    for label, s in (("confined", spec), ("free", free)):
        done = run_confined(s, [python, str(PROBE)])
        assert done.returncode == 0, done.stderr
        results[label] = done.stdout.split("\n")
    assert results["free"][:4] == ["mmap_wx ok", "mprotect_x ok", "netlink ok", "setpriority ok"]
    assert results["confined"][:5] == [
        "mmap_wx EPERM",
        "mprotect_x EPERM",
        "netlink EAFNOSUPPORT",
        "setpriority EPERM",
        f"umask 0o77 uid {spec.uid}",
    ]


# --- the three confined services pay an invoice that came through Postfix ---


class UnixSocketPostfix(PrivatePostfix):
    """The harness's Postfix, talking to the milter over the documented unix socket."""

    def __init__(self, workdir: Path, smtp_port: int, socket: Path) -> None:
        super().__init__(workdir, smtp_port, 0, AUTHSERV_ID, RECIPIENTS)
        self.socket = socket

    def main_cf(self, mail_uid: int, mail_gid: int) -> str:
        text = super().main_cf(mail_uid, mail_gid)
        # Non-chrooted here, so the absolute path (chrooted: unix:inboxpay/milter.sock).
        text, count = re.subn(
            r"(?m)^smtpd_milters = inet:127\.0\.0\.1:\d+$",
            f"smtpd_milters = unix:{self.socket}",
            text,
        )
        assert count == 1, "the snippet's smtpd_milters line changed"
        return text


def _card_keys(d: Deployment) -> CardKeys:
    cfg = config_module.load(d.config)
    signing = keys.load_signing_key(cfg.signing.key_file)
    public = OKPKey.import_key(keys.public_jwk(signing, cfg.signing.kid or keys.kid_of(signing)))
    return CardKeys(CardVerifier([public]), keys.load_recipient_key(cfg.signing.recipient_key_file))


def _accepts_unix(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


class Services:
    """The three units' ExecStart=, each confined, logs under the ops dir."""

    def __init__(self, d: Deployment, logs: Path) -> None:
        self.d = d
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, ready: Callable[[], bool], what: str) -> None:
        unit = self.d.unit(name)
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                confined(spec_of(self.d, unit), unit.exec_start()),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=environment(),
                cwd="/",
            )
        self.procs.append(proc)
        wait_until(ready, timeout=30, what=what, alive=process_exited(proc, log))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc, grace=15.0)


@pytest.fixture(scope="module")
def services(deployment: Deployment, ops_dir: Path) -> Iterator[Services]:
    s = Services(deployment, ops_dir)
    try:
        p = deployment.ports
        s.start(units.SANDBOX, lambda: accepts_tcp("127.0.0.1", p["sandbox"]), "sandbox processor")
        s.start(
            units.SIDECAR,
            lambda: _http("GET", f"http://127.0.0.1:{p['sidecar']}/readyz")[0] == 200,
            "sidecar /readyz",
        )
        s.start(
            units.MILTER, lambda: _accepts_unix(deployment.socket), f"milter on {deployment.socket}"
        )
        yield s
    finally:
        s.stop()


def _http(
    method: str, url: str, body: Any = None, token: str | None = None, key: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError:
        return 0, None


@pytest.mark.e2e
def test_confined_services_pay_an_invoice_from_postfix(
    deployment: Deployment,
    services: Services,
    ops_dir: Path,
    ops_dkim_keys: dict[str, DkimKey],
) -> None:
    d = deployment
    # The socket the drop-in's umask and the setgid directory produce: group postfix may connect.
    mode, uid, gid = _mode_owner(d.socket)
    assert (mode, uid, gid) == ("0o770", d.user.uid, d.postfix_gid), (mode, uid, gid)

    postfix = UnixSocketPostfix(ops_dir, free_port(), d.socket)
    postfix.start()
    try:
        mta = Mta(postfix, _card_keys(d), ops_dkim_keys)
        start = postfix.log_size()
        delivery = from_xero(mta, signed_xero_invoice(mta))[0]
        warnings = milter_warnings(postfix.log_since(start))
        assert warnings == [], "Postfix skipped the milter:\n" + "\n".join(warnings)
    finally:
        postfix.stop()
    claims = checks.card_claims(delivery, mta.card_keys.verifier)
    assert claims["invoice"]["partner"] == "xerotest", claims
    card = rawmime.values(delivery.raw, checks.CARD)[0]

    cfg = config_module.load(d.config)
    issuer = cfg.sidecar.issuers[0]
    token = mint(issuer, load_issuer_key(issuer), cfg.sidecar.audience, BOB, 300)
    api = f"http://127.0.0.1:{d.ports['sidecar']}"
    method = {
        "number": "4242424242424242",
        "exp_month": 12,
        "exp_year": 2040,
        "name": "Bob Example",
        "billing_address": {"line1": "1 Main St", "postal_code": "SW1Y 4LE", "country": "GB"},
    }
    status, saved = _http("POST", f"{api}/v1/payment-methods", method, token)
    assert status == 201, saved
    status, review = _http("POST", f"{api}/v1/cards/verify", {"card": card}, token)
    assert status == 200 and review["status"] == "payable", review
    pay = {"card": card, "payment_method_id": saved["id"], "security_code": "731"}
    status, paid = _http("POST", f"{api}/v1/payments", pay, token, key=f"ops-{uuid.uuid4().hex}")
    assert status == 201 and paid["status"] == "succeeded", paid

    # The store and the ledger the confined services wrote (umask 0077) are theirs alone.
    written = sorted(d.state.iterdir())
    assert written, "nothing in the state directory"
    for path in written:
        mode, uid, _ = _mode_owner(path)
        assert (mode, uid) == ("0o600", d.user.uid), (path, mode, uid)
