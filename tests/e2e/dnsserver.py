"""A real dnsmasq serving the test zones on loopback, with no upstream at all."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.resolver

from .procs import accepts_tcp, process_exited, require_program, stop, wait_until

# One DNS character-string holds at most 255 bytes (RFC 1035 3.3); longer TXT
# values, such as 2048-bit DKIM keys, are split and the reader concatenates.
_TXT_CHUNK = 255


@dataclass
class Zones:
    """The records dnsmasq serves; names are absolute, without the trailing dot."""

    txt: dict[str, str] = field(default_factory=dict)
    a: dict[str, str] = field(default_factory=dict)
    aaaa: dict[str, str] = field(default_factory=dict)
    mx: dict[str, tuple[str, int]] = field(default_factory=dict)


def txt_strings(value: str) -> list[str]:
    data = value.encode("ascii")
    return [data[i : i + _TXT_CHUNK].decode("ascii") for i in range(0, len(data), _TXT_CHUNK)]


def _txt_line(name: str, value: str) -> str:
    # dnsmasq has no escape for a quote inside a quoted string; test data never needs one.
    if '"' in value or "\n" in value:
        raise ValueError(f"TXT value for {name} cannot be written for dnsmasq: {value!r}")
    parts = ",".join(f'"{s}"' for s in txt_strings(value))
    return f"txt-record={name},{parts}"


def render_conf(zones: Zones) -> str:
    lines = [
        # Every name is local: what the zones lack is NXDOMAIN, and nothing is
        # ever forwarded (there is no upstream and --no-resolv anyway).
        "local=/#/",
    ]
    lines += [_txt_line(name, value) for name, value in zones.txt.items()]
    # host-record also answers the PTR, which SPF "ptr" or logging may ask for.
    lines += [f"host-record={name},{ip}" for name, ip in zones.a.items()]
    lines += [f"host-record={name},{ip}" for name, ip in zones.aaaa.items()]
    lines += [f"mx-host={name},{host},{pref}" for name, (host, pref) in zones.mx.items()]
    return "\n".join(lines) + "\n"


class DnsServer:
    """dnsmasq on 127.0.0.1:port, its config and query log under ``workdir``."""

    def __init__(self, workdir: Path, port: int, zones: Zones) -> None:
        self.workdir = workdir
        self.port = port
        self.zones = zones
        self.conf = workdir / "dnsmasq.conf"
        self.query_log = workdir / "dnsmasq-queries.log"
        self.output = workdir / "dnsmasq.out"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self, binary: str) -> list[str]:
        return [
            binary,
            "--no-resolv",
            "--no-hosts",
            "--no-daemon",
            "--no-poll",
            "--pid-file=",
            # Stay root: the log file lives in our tmp dir and dropping to the
            # "dnsmasq" user (absent with dnsmasq-base alone) would fail or lose it.
            "--user=root",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            f"--conf-file={self.conf}",
            "--log-queries",
            f"--log-facility={self.query_log}",
        ]

    def start(self) -> None:
        binary = require_program("dnsmasq", "apt-get install dnsmasq-base")
        self.conf.write_text(render_conf(self.zones), "ascii")
        with self.output.open("wb") as out:
            self._proc = subprocess.Popen(
                self.command(binary), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        # TCP first: a UDP query sent before dnsmasq binds waits out the whole lifetime.
        wait_until(
            lambda: accepts_tcp("127.0.0.1", self.port),
            timeout=10,
            what=f"dnsmasq on 127.0.0.1:{self.port}",
            alive=process_exited(self._proc, self.output),
        )
        wait_until(
            self._answers,
            timeout=10,
            what=f"dnsmasq on 127.0.0.1:{self.port}",
            alive=process_exited(self._proc, self.output),
        )

    def resolver(self) -> dns.resolver.Resolver:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = self.port
        r.lifetime = 2.0
        return r

    def _answers(self) -> bool:
        try:
            self.resolver().resolve("dnsmasq-probe.invalid", "TXT")
        except dns.resolver.NXDOMAIN:
            return True
        except dns.exception.DNSException:
            return False
        return True

    def check_txt(self, name: str) -> None:
        """Resolve one TXT record and compare it with the zone data; fail loudly on a mismatch."""
        expected = self.zones.txt[name]
        try:
            answer = self.resolver().resolve(name, "TXT")
        except dns.exception.DNSException as e:
            raise RuntimeError(
                f"dnsmasq does not serve TXT {name}: {e}; see {self.query_log}"
            ) from e
        got = [b"".join(rr.strings).decode("ascii") for rr in answer]
        if got != [expected]:
            raise RuntimeError(f"dnsmasq serves TXT {name} as {got!r}, expected [{expected!r}]")

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)
