"""Serve the milter with libmilter, with TCP_NODELAY on an inet listening socket.

At end of message a milter sends several replies in a row (insert header, add
header, accept). On TCP, Nagle's algorithm holds each small reply until the
previous one is acknowledged, and the MTA delays its ACK: about 40 ms per
message, which halves throughput over an inet socket. libmilter never sets
TCP_NODELAY, so we set it on the listening socket, whose accepted connections
inherit it on Linux. Otherwise this is pymilter's ``runmilter``, step for step.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import Milter
import milter

_log = logging.getLogger(__name__)


def listening_sockets() -> list[socket.socket]:
    """Our listening sockets (libmilter's), as duplicates the caller closes."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        except OSError:
            listening = 0
        if listening:
            found.append(sock)
        else:
            sock.close()
    return found


def set_nodelay_on_listener(port: int) -> bool:
    """Find our listening TCP socket on ``port`` among our descriptors; set TCP_NODELAY."""
    done = False
    for sock in listening_sockets():
        with sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            if sock.getsockname()[1] != port:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            done = True
    return done


def set_nonblocking_listener() -> None:
    """Make libmilter's listening socket non-blocking, for several processes sharing it.

    Each worker's libmilter waits in select() and then accept()s; all of them wake for
    one connection, and with a blocking socket the losers would sit in accept() (holding
    off their own shutdown). Non-blocking, they get EAGAIN, which libmilter's listener
    takes as "select again". Accepted connections do not inherit the flag on Linux.
    """
    for sock in listening_sockets():
        with sock:
            sock.setblocking(False)  # the flag lives on the shared open file description


def _callbacks() -> None:
    def priv(ctx: Any) -> Any:
        return ctx.getpriv()

    milter.set_connect_callback(Milter.connect_callback)
    milter.set_helo_callback(lambda ctx, host: priv(ctx).hello(host))
    milter.set_envfrom_callback(lambda ctx, *b: priv(ctx).envfrom_bytes(*b))
    milter.set_envrcpt_callback(lambda ctx, *b: priv(ctx).envrcpt_bytes(*b))
    milter.set_header_callback(lambda ctx, f, v: priv(ctx).header_bytes(f, v))
    milter.set_eoh_callback(lambda ctx: priv(ctx).eoh())
    milter.set_body_callback(lambda ctx, chunk: priv(ctx).body(chunk))
    milter.set_eom_callback(lambda ctx: priv(ctx).eom())
    milter.set_abort_callback(lambda ctx: priv(ctx).abort())
    milter.set_close_callback(Milter.close_callback)


def open_socket(name: str, spec: str, timeout: int) -> None:
    """Register the callbacks and open ``spec`` (a libmilter socket spec), once."""
    _callbacks()
    milter.setconn(spec)
    if timeout > 0:
        milter.settimeout(timeout)
    milter.register(
        name,
        data=lambda ctx: ctx.getpriv().data(),
        unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
        negotiate=Milter.negotiate_callback,
    )
    milter.opensocket(True)
    if spec.startswith(("inet:", "inet6:")):
        port = int(spec.split(":", 1)[1].split("@", 1)[0])
        if not set_nodelay_on_listener(port):
            _log.warning("could not set TCP_NODELAY on the milter socket")


def serve(name: str, spec: str, timeout: int) -> None:
    """Open ``spec`` (a libmilter socket spec) and run until libmilter stops."""
    open_socket(name, spec, timeout)
    milter.main()
