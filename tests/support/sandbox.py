"""The sandbox processor as a real separate process: the one way tests start it.

``Sandbox.of_config``: the sandbox of a config's ``[sandbox]`` table, as ``inboxpay
processor-sandbox --config`` runs it (or answering late, or holding charges at a gate).
``Sandbox.of_keys``: a sandbox with no config file, on a free loopback port, from a
private key, an API key and a ledger path (the processor suite's own).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp

from inboxpay import config as config_module
from inboxpay.processor.keys import public_jwk_of
from tests.support.procs import Process, free_port

# The CLI cannot set the sandbox's answer delay: this is `inboxpay processor-sandbox` with
# settings_from_config(..., delay=...), its [sandbox] table given as JSON in argv.
_SANDBOX = """
import json, sys
from pathlib import Path
from types import SimpleNamespace
from inboxpay import logs
from inboxpay.processor.sandbox.server import run
from inboxpay.processor.sandbox.settings import settings_from_config
a = json.loads(sys.argv[1])
logs.setup("debug")
section = SimpleNamespace(
    host=a["host"],
    port=a["port"],
    key_file=Path(a["key_file"]),
    api_key_file=Path(a["api_key_file"]),
    ledger=Path(a["ledger"]),
    public_url=a["public_url"],
)
run(settings_from_config(section, delay=a["delay"]))
"""


# A sandbox whose charge requests it processes late: each POST /v1/charges, once received,
# waits until the gate file exists before the sandbox looks at it. The sidecar times out
# meanwhile, as behind a slow path; the request is still processed once released.
_GATED_SANDBOX = """
import asyncio, sys
from pathlib import Path
from aiohttp import web
from inboxpay import config, logs
from inboxpay.processor.sandbox.server import create_app
from inboxpay.processor.sandbox.settings import parse_listen, settings_from_config
cfg = config.load(sys.argv[1])
gate = Path(sys.argv[2])
logs.setup("debug")
settings = settings_from_config(cfg.sandbox)
app = create_app(settings)

@web.middleware
async def late(request, handler):
    if request.method == "POST" and request.path == "/v1/charges":
        await request.read()  # received in full: the sidecar may hang up meanwhile
        while not gate.exists():
            await asyncio.sleep(0.05)
    return await handler(request)

app.middlewares.insert(0, late)
host, port = parse_listen(settings.listen)
web.run_app(app, host=host, port=port, print=None)
"""


def _settings_argv(section: dict[str, Any], delay: float) -> list[str]:
    return [sys.executable, "-c", _SANDBOX, json.dumps({**section, "delay": delay})]


class Sandbox(Process):
    """The sandbox processor; its output (the JSON logs) goes to ``log_path``."""

    def __init__(
        self,
        argv: list[str],
        url: str,
        log_path: Path,
        *,
        api_key_file: Path,
        public_key_file: Path,
        ledger_file: Path,
    ) -> None:
        super().__init__(argv, url, log_path)
        self.api_key_file = api_key_file
        self.public_key_file = public_key_file
        self.ledger_file = ledger_file

    @classmethod
    def of_config(
        cls, config_path: Path, log_path: Path, *, delay: float = 0.0, gate: Path | None = None
    ) -> Sandbox:
        """The sandbox of the config's ``[sandbox]`` table. ``delay``: each charge answer
        waits that long after the charge is written; ``gate``: see _GATED_SANDBOX."""
        data = tomllib.loads(config_path.read_text())
        section = data["sandbox"]
        base = config_path.parent
        if gate is not None:
            argv = [sys.executable, "-c", _GATED_SANDBOX, str(config_path), str(gate)]
        elif delay:
            s = config_module.load(config_path).sandbox
            assert s is not None, f"{config_path} has no [sandbox] table"
            table = {
                "host": s.host,
                "port": s.port,
                "key_file": str(s.key_file),
                "api_key_file": str(s.api_key_file),
                "ledger": str(s.ledger),
                "public_url": s.public_url,
            }
            argv = _settings_argv(table, delay)
        else:
            argv = [sys.executable, "-m", "inboxpay", "processor-sandbox"]
            argv += ["--config", str(config_path), "--log-level", "debug"]
        return cls(
            argv,
            f"http://{section['listen']}",
            log_path,
            api_key_file=base / section["api_key_file"],
            # The public half, as the config's own [processors.sandbox] names it (init
            # writes both).
            public_key_file=base / data["processors"]["sandbox"]["public_key_file"],
            ledger_file=base / section["ledger"],
        )

    @classmethod
    def of_keys(
        cls, workdir: Path, key_file: Path, api_key: str, *, ledger: Path, delay: float = 0.0
    ) -> Sandbox:
        """A sandbox on a free loopback port, its log, API key file and public key file in
        ``workdir`` (the API key in a file, not on a command line that ps shows)."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        api_key_file = workdir / f"sandbox-{port}.api-key"
        api_key_file.touch(0o600)
        api_key_file.write_text(api_key + "\n", "ascii")
        public_key_file = workdir / f"sandbox-{port}.public.jwk"
        public_key_file.write_text(json.dumps(public_jwk_of(key_file)))
        table = {
            "host": "127.0.0.1",
            "port": port,
            "key_file": str(key_file),
            "api_key_file": str(api_key_file),
            "ledger": str(ledger),
            "public_url": url,
        }
        return cls(
            _settings_argv(table, delay),
            url,
            workdir / f"sandbox-{port}.log",
            api_key_file=api_key_file,
            public_key_file=public_key_file,
            ledger_file=ledger,
        )

    def charge_requests_done(self) -> int:
        """How many charge requests the sandbox has answered (new or replayed), by its log."""
        return len(re.findall(r'"msg": ?"charge (?:created|replayed)"', self.log_text()))

    @property
    def api_key(self) -> str:
        return self.api_key_file.read_text("ascii").strip()

    async def ledger(self) -> list[dict[str, Any]]:
        """The charges that moved money, from the processor itself."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/v1/ledger", headers=headers) as r,
        ):
            assert r.status == 200, await r.text()
            charges: list[dict[str, Any]] = (await r.json())["charges"]
            return charges

    def processor_table(self, timeout: float = 10.0) -> dict[str, Any]:
        """A ``[processors.sandbox]`` table pointing at this sandbox."""
        return {
            "url": self.url,
            "public_key_file": str(self.public_key_file),
            "api_key_file": str(self.api_key_file),
            "timeout": timeout,
        }
