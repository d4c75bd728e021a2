"""Start dkimpy-milter with its DNS pointed at the benchmark's dnsmasq.

dkimpy looks keys up through dnspython's default resolver, which reads
/etc/resolv.conf and so always asks port 53 of the system's nameservers. Changing
/etc/resolv.conf would disturb everything else on the machine, so this launcher
replaces the default resolver in-process and then runs dkimpy-milter's own main().

Run with the dkimpy-milter venv's Python (see bench/setup.sh), not the project's:
``python dkimpy_launch.py DNS_PORT CONFIG_FILE``.
"""

from __future__ import annotations

import sys

import dns.resolver


def point_dns_at(port: int) -> None:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    dns.resolver.default_resolver = resolver


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit("usage: dkimpy_launch.py DNS_PORT CONFIG_FILE")
    point_dns_at(int(sys.argv[1]))
    # Imported late: dkimpy_milter lives only in the dkimpy venv.
    from dkimpy_milter import main as dkimpy_main

    sys.argv = ["dkimpy-milter", sys.argv[2]]
    dkimpy_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
