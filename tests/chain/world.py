"""The whole chain with real components, from one config:

dnsmasq with the e2e test zones -> a private Postfix (inboxpay/dev/mta.py) with the real
``inboxpay milter`` process attached -> Maildirs -> the sidecar process on PostgreSQL,
paying through the sandbox processor process -> the demo inbox and the test webmail,
opened in headless Chromium by the tests.

Everything is reused: the DNS server, zones, DKIM keys, milter process and Postfix of the
e2e harness (tests/e2e/), the sandbox processor process (tests/support/sandbox.py), the
sidecar process and the config editing of the sidecar suite (tests/sidecar/procs.py,
tests/sidecar/toml.py), and the world helpers (tokens, the processor's ledger) and test
webmail of the browser suite (tests/browser/). Only the one config that all of them share
is written here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browser.webmail import Webmail
from browser.world import World
from e2e.dnsserver import DnsServer
from e2e.harness import Mta
from e2e.milterproc import PARTNERS_TOML, CardKeys, MilterProcess
from e2e.postfix import PrivatePostfix
from e2e.procs import free_port
from e2e.session import running_dns, running_milter, running_postfix
from e2e.world import AUTHSERV_ID, BOB, RECIPIENTS, DkimKey, new_dkim_keys
from joserfc.jwk import OKPKey
from sidecar.procs import Sidecar
from sidecar.toml import dumps

from inboxpay import config as config_module
from inboxpay.card import keys
from inboxpay.card.header import CardVerifier
from inboxpay.dev.init import init
from tests.support.sandbox import Sandbox

#: The demo inbox's user: an address of the e2e world that Postfix delivers to a Maildir.
DEMO_USER = BOB


def origin(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def card_keys_of(path: Path) -> CardKeys:
    """What checks a card the milter of this config issued."""
    cfg = config_module.load(path)
    signing = keys.load_signing_key(cfg.signing.key_file)
    kid = cfg.signing.kid or keys.kid_of(signing)
    public = OKPKey.import_key(keys.public_jwk(signing, kid))
    return CardKeys(CardVerifier([public]), keys.load_recipient_key(cfg.signing.recipient_key_file))


class ConfiguredMilter(MilterProcess):
    """The real ``inboxpay milter`` process of the e2e harness, on a config written
    beforehand (the chain's one config) instead of one of its own."""

    def __init__(self, config: Path, port: int, dns_port: int) -> None:
        super().__init__(config.parent, port, AUTHSERV_ID, dns_port)
        self.config = config

    def write_config(self) -> CardKeys:
        return card_keys_of(self.config)


@dataclass(frozen=True)
class Ports:
    milter: int
    smtp: int
    sidecar: int
    sandbox: int
    webmail: int
    stranger: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(6)))


def write_config(
    root: Path, ports: Ports, dns_port: int, storage_url: str, demo_maildir: Path
) -> Path:
    """``inboxpay init``'s config, edited: the e2e world's partners and resolver, the
    PostgreSQL store, our ports, the webmail's origin, and the demo inbox on the Maildir
    Postfix delivers the demo user's mail to."""
    path = init(
        root,
        AUTHSERV_ID,
        port=ports.milter,
        sidecar_port=ports.sidecar,
        sandbox_port=ports.sandbox,
        metrics_port=free_port(),
    )
    data: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    world = tomllib.loads(PARTNERS_TOML)
    data["partners"] = world["partners"]
    data["orgs"] = world["orgs"]
    data["dns"].update({"nameservers": ["127.0.0.1"], "port": dns_port, "timeout": 2.0})
    data["storage"]["url"] = storage_url
    data["sidecar"].update(
        {
            # The demo page frames the pane from the sidecar's own origin.
            "webmail_origins": [origin(ports.sidecar), origin(ports.webmail)],
            "demo_maildir": str(demo_maildir),
            "demo_user": DEMO_USER,
        }
    )
    path.write_text(dumps(data), "utf-8")
    config_module.load(path)  # still a valid config
    return path


@dataclass(frozen=True)
class Chain:
    root: Path
    config: Path
    dns: DnsServer
    milter: ConfiguredMilter
    postfix: PrivatePostfix
    mta: Mta
    sandbox: Sandbox
    sidecar: Sidecar
    #: The browser suite's view of the sidecar: tokens, API calls, the processor's ledger.
    world: World
    webmail: Webmail

    @property
    def demo_url(self) -> str:
        return f"{self.world.sidecar}/demo/"


@contextmanager
def running_chain(root: Path, storage_url: str) -> Iterator[Chain]:
    ports = Ports.free()
    dkim: dict[str, DkimKey] = new_dkim_keys()
    with ExitStack() as stack:
        dns = stack.enter_context(running_dns(root, dkim))
        postfix = PrivatePostfix(root, ports.smtp, ports.milter, AUTHSERV_ID, RECIPIENTS)
        path = write_config(root, ports, dns.port, storage_url, postfix.maildir(DEMO_USER))
        milter = ConfiguredMilter(path, ports.milter, dns.port)
        card_keys = stack.enter_context(running_milter(milter))
        stack.enter_context(running_postfix(postfix))
        sandbox = stack.enter_context(Sandbox.of_config(path, root / "sandbox.log"))
        sidecar = stack.enter_context(Sidecar(path, root / "sidecar.log"))
        webmail = Webmail(ports.webmail, ports.stranger)
        webmail.start()
        stack.callback(webmail.stop)
        cfg = config_module.load(path)
        world = World(root, ports.sidecar, ports.sandbox, ports.webmail, ports.stranger, cfg)
        yield Chain(
            root,
            path,
            dns,
            milter,
            postfix,
            Mta(postfix, card_keys, dkim),
            sandbox,
            sidecar,
            world,
            webmail,
        )
