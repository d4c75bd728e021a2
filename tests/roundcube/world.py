"""Real Roundcube with the InboxPay plugin, on real Dovecot, fed by the real milter (issue 14).

dnsmasq -> a private Postfix with the real ``inboxpay milter`` -> the Maildirs of Bob and
Carol -> a private Dovecot (loopback port, passwd-file users, those Maildirs) -> Debian's
Roundcube 1.6 under ``php -S`` (loopback, its own SQLite database and config folder,
with integrations/roundcube/inboxpay/ linked in as a plugin) -> the real sidecar (SQLite)
and sandbox processor.

The InboxPay half is the chain suite's (tests/chain/world.py: one config from
``inboxpay init``, the e2e harness's DNS, milter and Postfix); the sidecar additionally
trusts Roundcube's issuer key, made as docs/roundcube.md says (``openssl genpkey``), and
lists Roundcube's origin in ``webmail_origins``.

Nothing of the system's Roundcube (``/etc/roundcube``, ``/var/lib/roundcube``) or Dovecot
is touched: Roundcube's install folder is rebuilt under the test's folder from links into
``/usr/share/roundcube``, as Debian builds ``/var/lib/roundcube``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser.world import World
from chain.world import ConfiguredMilter, Ports, origin, write_config
from e2e.dnsserver import DnsServer
from e2e.harness import Mta
from e2e.postfix import PrivatePostfix
from e2e.procs import free_port
from e2e.session import running_dns, running_milter, running_postfix
from e2e.world import AUTHSERV_ID, BOB, CAROL, RECIPIENTS, DkimKey, new_dkim_keys
from sidecar.procs import Sidecar
from sidecar.toml import dumps

from inboxpay import config as config_module
from tests.support.procs import start, stop, wait_http
from tests.support.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "integrations" / "roundcube" / "inboxpay"
ROUNDCUBE = Path("/usr/share/roundcube")
ROUNDCUBE_ETC = Path("/etc/roundcube")
ISSUER = "roundcube"
#: The users of the private Dovecot (their Roundcube login is the address).
PASSWORDS = {BOB: "bob-password-1", CAROL: "carol-password-1"}

#: What must be installed (scripts/bootstrap.sh installs it): program or file -> package.
REQUIRED = {
    "/usr/bin/php": "php-cli",
    "/usr/sbin/dovecot": "dovecot-imapd",
    "/usr/lib/dovecot/imap": "dovecot-imapd",
    str(ROUNDCUBE / "index.php"): "roundcube-core",
    str(ROUNDCUBE / "SQL" / "sqlite.initial.sql"): "roundcube-core",
    "/usr/bin/openssl": "openssl",
}


def require_installed() -> None:
    """Fail (never skip) when Roundcube, PHP, Dovecot or their SQLite parts are missing."""
    missing = sorted({pkg for path, pkg in REQUIRED.items() if not Path(path).exists()})
    modules = (
        subprocess.run(["php", "-m"], capture_output=True, text=True, check=False).stdout.lower()
        if Path("/usr/bin/php").exists()
        else ""
    )
    for module, pkg in (("pdo_sqlite", "php-sqlite3"), ("sodium", "php-cli")):
        if module not in modules.split():
            missing.append(pkg)
    if missing:
        pytest.fail(
            f"missing for the Roundcube tests: apt-get install {' '.join(sorted(set(missing)))} "
            "(scripts/bootstrap.sh installs them)",
            pytrace=False,
        )


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def issuer_keys(folder: Path) -> tuple[Path, Path]:
    """Roundcube's issuer key pair, made exactly as docs/roundcube.md says."""
    private, public = folder / "inboxpay-issuer.pem", folder / "inboxpay-issuer.pub.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(private))
    openssl("pkey", "-in", str(private), "-pubout", "-out", str(public))
    private.chmod(0o600)
    return private, public


def trust_roundcube(config: Path, public_key: Path, roundcube_origin: str) -> None:
    """The sidecar's side of docs/roundcube.md: Roundcube's issuer, and its origin."""
    data: dict[str, Any] = tomllib.loads(config.read_text("utf-8"))
    sidecar = data["sidecar"]
    sidecar["issuers"].append({"iss": ISSUER, "alg": "EdDSA", "key_file": str(public_key)})
    if roundcube_origin not in sidecar["webmail_origins"]:
        sidecar["webmail_origins"].append(roundcube_origin)
    config.write_text(dumps(data), "utf-8")
    config_module.load(config)  # still a valid config


class Dovecot:
    """A private Dovecot: IMAP on 127.0.0.1:port only, passwd-file users whose mail is
    the Maildir Postfix delivers to (read and written as that Maildir's owner)."""

    def __init__(self, root: Path, port: int, maildirs: dict[str, Path]) -> None:
        self.root = root / "dovecot"
        self.port = port
        self.maildirs = maildirs
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def write_config(self) -> Path:
        (self.root / "run").mkdir(parents=True)
        (self.root / "state").mkdir()
        users = []
        for address, maildir in self.maildirs.items():
            info = maildir.stat()
            users.append(
                f"{address}:{{PLAIN}}{PASSWORDS[address]}:{info.st_uid}:{info.st_gid}::"
                f"{maildir}::userdb_mail=maildir:{maildir}"
            )
        passwd = self.root / "users"
        passwd.write_text("\n".join(users) + "\n", "utf-8")
        passwd.chmod(0o644)
        conf = self.root / "dovecot.conf"
        conf.write_text(
            f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log_path}
instance_name = inboxpay-roundcube-test
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_privileged_group =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""",
            "utf-8",
        )
        return conf

    def start(self) -> None:
        conf = self.write_config()
        self.proc = start(["/usr/sbin/dovecot", "-F", "-c", str(conf)], self.root / "stdout.log")
        wait_port(self.port, self.proc, self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError as e:
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text("utf-8", "replace") if log.exists() else ""
                raise AssertionError(f"not listening on 127.0.0.1:{port}:\n{text[-3000:]}") from e
            time.sleep(0.1)


def php_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def plugin_config(values: dict[str, str]) -> str:
    """The plugin's config.inc.php.dist with these options set (each must be in it)."""
    text = (PLUGIN / "config.inc.php.dist").read_text("utf-8")
    for key, value in values.items():
        pattern = re.compile(rf"^\$config\['{re.escape(key)}'\] = .*;$", re.MULTILINE)
        # A literal replacement (no backslash or group escapes in the value).
        line = f"$config['{key}'] = {php_string(value)};".replace("\\", "\\\\")
        text, n = pattern.subn(line, text)
        assert n == 1, f"config.inc.php.dist no longer sets {key}"
    return text


class Roundcube:
    """Debian's Roundcube under ``php -S`` on 127.0.0.1, with a folder of its own laid
    out as Debian's /var/lib/roundcube: links to /usr/share/roundcube, our config/,
    plugins/ with the InboxPay plugin linked in, logs/, temp/ and the SQLite database."""

    def __init__(
        self, root: Path, port: int, imap_port: int, sidecar_url: str, key_file: Path
    ) -> None:
        self.home = root / "roundcube"
        self.port = port
        self.imap_port = imap_port
        self.sidecar_url = sidecar_url
        self.key_file = key_file
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{origin(self.port)}/"

    @property
    def errors_log(self) -> Path:
        return self.home / "logs" / "errors.log"

    def lay_out(self) -> None:
        home = self.home
        for name in ("config", "plugins", "skins", "logs", "temp", "db", "public_html/program"):
            (home / name).mkdir(parents=True, exist_ok=True)
        for name in ("program", "SQL", "index.php"):
            (home / name).symlink_to(ROUNDCUBE / name)
        (home / "skins" / "elastic").symlink_to(ROUNDCUBE / "skins" / "elastic")
        for plugin in (ROUNDCUBE / "plugins").iterdir():
            (home / "plugins" / plugin.name).symlink_to(plugin)
        (home / "plugins" / "inboxpay").symlink_to(PLUGIN)  # docs/roundcube.md: "symlink"
        for name in ("defaults.inc.php", "mimetypes.php"):
            (home / "config" / name).symlink_to(ROUNDCUBE_ETC / name)
        public = home / "public_html"
        # Debian's public_html/index.php: INSTALL_PATH is the folder above it.
        shutil.copy(Path("/var/lib/roundcube/public_html/index.php"), public / "index.php")
        for name in ("plugins", "skins"):
            (public / name).symlink_to(Path("..") / name)
        for name in ("js", "resources"):
            (public / "program" / name).symlink_to(Path("../..") / "program" / name)

        database = home / "db" / "roundcube.db"
        with sqlite3.connect(database) as db:
            db.executescript((ROUNDCUBE / "SQL" / "sqlite.initial.sql").read_text("utf-8"))
        settings = {
            "db_dsnw": f"sqlite:///{database}?mode=0600",
            "imap_host": f"127.0.0.1:{self.imap_port}",
            "smtp_host": "",
            "des_key": secrets.token_urlsafe(18)[:24],
            "skin": "elastic",
            "language": "en_US",
            "log_dir": f"{home}/logs/",
            "temp_dir": f"{home}/temp/",
            "support_url": "",
            "product_name": "Roundcube Webmail",
        }
        lines = ["<?php", "$config = [];"]
        lines += [f"$config[{php_string(k)}] = {php_string(v)};" for k, v in settings.items()]
        lines += [
            "$config['plugins'] = ['inboxpay'];",
            "$config['enable_spellcheck'] = false;",
            "$config['enable_installer'] = false;",
            "$config['refresh_interval'] = 0;",
            "$config['login_rate_limit'] = 0;",
        ]
        (home / "config" / "config.inc.php").write_text("\n".join(lines) + "\n", "utf-8")
        # The plugin's options: its config.inc.php.dist, filled in, where docs/roundcube.md
        # puts it on Debian (/etc/roundcube/inboxpay.inc.php: Roundcube's config folder).
        (home / "config" / "inboxpay.inc.php").write_text(
            plugin_config(
                {
                    "inboxpay_sidecar_url": self.sidecar_url,
                    "inboxpay_issuer": ISSUER,
                    "inboxpay_key_file": str(self.key_file),
                }
            ),
            "utf-8",
        )

    def start(self) -> None:
        self.lay_out()
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}
        cmd = ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(self.home / "public_html")]
        self.proc = start(cmd, self.home / "logs" / "php-server.log", env=env)
        wait_http(self.url)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def error_log(self) -> str:
        return self.errors_log.read_text("utf-8", "replace") if self.errors_log.exists() else ""


@dataclass(frozen=True)
class RoundcubeWorld:
    root: Path
    config: Path
    dns: DnsServer
    milter: ConfiguredMilter
    postfix: PrivatePostfix
    mta: Mta
    sandbox: Sandbox
    sidecar: Sidecar
    dovecot: Dovecot
    roundcube: Roundcube
    #: The browser suite's view of the sidecar: tokens, API calls, the processor's ledger.
    world: World


@contextmanager
def running_roundcube(root: Path) -> Iterator[RoundcubeWorld]:
    require_installed()
    ports = Ports.free()  # webmail: Roundcube's port
    imap_port = free_port()
    dkim: dict[str, DkimKey] = new_dkim_keys()
    with ExitStack() as stack:
        dns = stack.enter_context(running_dns(root, dkim))
        postfix = PrivatePostfix(root, ports.smtp, ports.milter, AUTHSERV_ID, RECIPIENTS)
        path = write_config(root, ports, dns.port, "sqlite:///inboxpay.db", postfix.maildir(BOB))
        keys = root / "roundcube-keys"
        keys.mkdir()
        private_key, public_key = issuer_keys(keys)
        trust_roundcube(path, public_key, origin(ports.webmail))
        milter = ConfiguredMilter(path, ports.milter, dns.port)
        card_keys = stack.enter_context(running_milter(milter))
        stack.enter_context(running_postfix(postfix))
        sandbox = stack.enter_context(Sandbox.of_config(path, root / "sandbox.log"))
        sidecar = stack.enter_context(Sidecar(path, root / "sidecar.log"))
        dovecot = Dovecot(root, imap_port, {a: postfix.maildir(a) for a in PASSWORDS})
        dovecot.start()
        stack.callback(dovecot.stop)
        roundcube = Roundcube(root, ports.webmail, imap_port, origin(ports.sidecar), private_key)
        roundcube.start()
        stack.callback(roundcube.stop)
        cfg = config_module.load(path)
        world = World(root, ports.sidecar, ports.sandbox, ports.webmail, ports.stranger, cfg)
        urllib.request.urlopen(f"{world.sidecar}/healthz", timeout=10).close()
        yield RoundcubeWorld(
            root,
            path,
            dns,
            milter,
            postfix,
            Mta(postfix, card_keys, dkim),
            sandbox,
            sidecar,
            dovecot,
            roundcube,
            world,
        )
