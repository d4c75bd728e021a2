"""A stand-in milter for developing the harness: adds one header, changes nothing else.

Run as ``python null_milter.py inet:PORT@127.0.0.1``; selected with
``INBOXPAY_E2E_MILTER=null``. It proves Postfix really calls a milter.
"""

from __future__ import annotations

import sys

import Milter

HEADER = "X-InboxPay-Null-Milter"


class NullMilter(Milter.Base):  # type: ignore[misc]
    def __init__(self) -> None:
        self.client = "unknown"

    def connect(self, hostname: str, family: int, hostaddr: object) -> int:
        self.client = f"{hostname} {hostaddr!r} {self.getsymval('{client_addr}')}"
        return Milter.CONTINUE

    def eom(self) -> int:
        self.addheader(HEADER, f"client={self.client}", 0)
        return Milter.ACCEPT


def main(socket: str) -> None:
    Milter.factory = NullMilter
    Milter.set_flags(Milter.ADDHDRS)
    Milter.runmilter("null-milter", socket, 30)


if __name__ == "__main__":
    main(sys.argv[1])
