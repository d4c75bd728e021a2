"""The milter under test as a separate process, with a generated config and fresh keys."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import OKPKey

from inboxpay.card import keys
from inboxpay.card.header import CardVerifier

from .procs import accepts_tcp, process_exited, stop, tail, wait_until

REPO = Path(__file__).resolve().parents[2]

PARTNERS_TOML = """\
[[partners]]
id = "xero"
name = "Xero"
sender_domains = ["post.xero.test"]
invoice_url_hosts = ["in.xero.test"]

[[partners]]
id = "acme"
name = "Acme Supplies"
sender_domains = ["acme.test"]
invoice_url_hosts = ["pay.acme.test"]

[orgs."disabled.test"]
pay_enabled = false
"""


@dataclass(frozen=True)
class CardKeys:
    """What a test needs to check a card: the verifier and the recipient-hash secret."""

    verifier: CardVerifier
    recipient_key: bytes


# A TOML value: a string, a number, a boolean or a list of strings.
Setting = str | int | float | bool | Sequence[str]


def _toml(value: Setting) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the ASCII values tests use
    return "[" + ", ".join(json.dumps(v) for v in value) + "]"


def _table(settings: Mapping[str, Setting]) -> str:
    return "".join(f"{key} = {_toml(value)}\n" for key, value in settings.items())


def render_config(
    port: int,
    authserv_id: str,
    dns_port: int,
    milter: Mapping[str, Setting] | None = None,
    dns: Mapping[str, Setting] | None = None,
) -> str:
    """The milter's config; ``milter`` and ``dns`` add or override keys of those tables."""
    milter_table: dict[str, Setting] = {
        "socket": f"inet:{port}@127.0.0.1",
        "authserv_id": authserv_id,
    }
    dns_table: dict[str, Setting] = {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout": 2.0}
    milter_table.update(milter or {})
    dns_table.update(dns or {})
    return f"""\
[milter]
{_table(milter_table)}
[dns]
{_table(dns_table)}
[signing]
key_file = "keys/card-signing.pem"
recipient_key_file = "keys/recipient.key"

{PARTNERS_TOML}"""


def real_milter_cli_error() -> str | None:
    """Why ``python -m inboxpay milter`` cannot run yet, or None when it can."""
    done = subprocess.run(
        [sys.executable, "-m", "inboxpay", "milter", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=30,
    )
    if done.returncode == 0:
        return None
    return (
        f"`python -m inboxpay milter --help` exited {done.returncode}: {done.stderr.strip()[-500:]}"
    )


class MilterProcess:
    def __init__(
        self,
        workdir: Path,
        port: int,
        authserv_id: str,
        dns_port: int,
        milter: Mapping[str, Setting] | None = None,
        dns: Mapping[str, Setting] | None = None,
        metrics_port: int | None = None,
    ) -> None:
        """``milter`` and ``dns`` override config keys (e.g. ``max_message_bytes``);
        ``metrics_port``: serve Prometheus metrics there (``[milter] metrics_listen``)."""
        self.workdir = workdir
        self.port = port
        self.authserv_id = authserv_id
        self.dns_port = dns_port
        self.metrics_port = metrics_port
        self.milter_settings = dict(milter or {})
        if metrics_port is not None:
            self.milter_settings.setdefault("metrics_listen", f"127.0.0.1:{metrics_port}")
        self.dns_settings = dict(dns or {})
        self.config = workdir / "inboxpay.toml"
        self.log = workdir / "milter.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> CardKeys:
        key_dir = self.workdir / "keys"
        signing = keys.generate_signing_key(key_dir / "card-signing.pem")
        keys.generate_recipient_key(key_dir / "recipient.key")
        text = render_config(
            self.port, self.authserv_id, self.dns_port, self.milter_settings, self.dns_settings
        )
        self.config.write_text(text, "utf-8")
        public = OKPKey.import_key(keys.public_jwk(signing, keys.kid_of(signing)))
        return CardKeys(
            verifier=CardVerifier([public]),
            recipient_key=keys.load_recipient_key(key_dir / "recipient.key"),
        )

    def command(self) -> list[str]:
        return [sys.executable, "-m", "inboxpay", "milter", "--config", str(self.config)]

    def start(self) -> CardKeys:
        error = real_milter_cli_error()
        if error is not None:
            raise RuntimeError(error)
        card_keys = self.write_config()
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=REPO,
            )
        wait_until(
            lambda: accepts_tcp("127.0.0.1", self.port),
            timeout=20,
            what=f"milter on 127.0.0.1:{self.port}",
            alive=process_exited(self._proc, self.log),
        )
        # With several workers the socket accepts before they serve: wait for them.
        wait_until(
            lambda: b'"milter listening"' in self.log.read_bytes(),
            timeout=60,
            what="the milter's workers",
            alive=process_exited(self._proc, self.log),
        )
        return card_keys

    @property
    def pid(self) -> int:
        """The milter process's id, for reading /proc/PID/status."""
        if self._proc is None:
            raise RuntimeError("milter not started")
        return self._proc.pid

    def check_alive(self) -> None:
        """Fail when the milter died mid-session (Postfix would just skip it)."""
        if self._proc is not None and self._proc.poll() is not None:
            status = self._proc.returncode
            raise RuntimeError(f"milter exited ({status}); log {self.log}:\n{tail(self.log)}")

    def stop(self) -> None:
        if self._proc is not None:
            # libmilter notices SIGTERM only at its next listener poll, up to ~5 s.
            stop(self._proc, grace=10.0)
