"""The floor of the milter protocol: a pymilter milter that looks at nothing and accepts.

It asks for the same events as the InboxPay milter (connect, HELO, MAIL, RCPT, DATA,
headers, body, end of message), answers DATA and marks every other callback that
always continues ``@Milter.noreply``, as InboxPay's filter does, so the difference
between the two is the work InboxPay does, not the protocol. It changes no message.

Run as ``python null_milter.py SOCKET [--add-header]`` (SOCKET ``unix:/path`` or
``inet:PORT@127.0.0.1``). With ``--add-header`` it adds one header at end of
message, the least a milter that stamps anything does: the floor for InboxPay,
which always adds Authentication-Results.
On SIGTERM libmilter returns from ``runmilter`` and the milter prints how many
messages reached end of message, so the benchmark can prove Postfix really called it
(a milter that adds nothing leaves no other trace).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import Milter

EOM_LINE = "null-milter eom="
HEADER = "X-Bench-Null-Milter"

_count_lock = threading.Lock()
_eom_count = 0


def _count_eom() -> None:
    global _eom_count
    # libmilter runs one thread per connection; the counter is shared.
    with _count_lock:
        _eom_count += 1


# Same negotiation as InboxPayMilter, so Postfix sends headers the same way.
@Milter.header_leading_space
class NullMilter(Milter.Base):  # type: ignore[misc]
    @Milter.noreply  # type: ignore[untyped-decorator]
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    def hello(self, heloname: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    def envfrom(self, mailfrom: str, *params: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    def envrcpt(self, to: str, *params: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    def header(self, name: str, value: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    # Answered, as InboxPay answers it (over TCP it spares a delayed-ACK wait).
    def data(self) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply  # type: ignore[untyped-decorator]
    def body(self, chunk: bytes) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def eom(self) -> int:
        _count_eom()
        return Milter.ACCEPT  # type: ignore[no-any-return]


class HeaderMilter(NullMilter):
    def eom(self) -> int:
        _count_eom()
        # At the top, like InboxPay's Authentication-Results (SMFIR_INSHEADER).
        self.addheader(HEADER, "1", 0)
        return Milter.ACCEPT  # type: ignore[no-any-return]


def main(socket: str, add_header: bool) -> None:
    Milter.factory = HeaderMilter if add_header else NullMilter
    # Ask only for the rights used: a milter that changes nothing asks for none.
    Milter.set_flags(Milter.ADDHDRS if add_header else 0)
    Milter.runmilter("bench-null-milter", socket, 120)
    print(f"{EOM_LINE}{_eom_count}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 2) or args[1:] not in ([], ["--add-header"]):
        sys.exit("usage: null_milter.py SOCKET [--add-header]  (unix:/path or inet:PORT@127.0.0.1)")
    main(args[0], add_header=args[1:] == ["--add-header"])
