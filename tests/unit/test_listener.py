"""TCP_NODELAY reaches the listening socket, and connections accepted from it inherit it."""

from __future__ import annotations

import socket

from inboxpay.milter.listener import set_nodelay_on_listener


def test_listener_and_accepted_connections_get_nodelay() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert set_nodelay_on_listener(server.getsockname()[1])
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            del client


def test_only_the_listener_on_that_port_changes() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        assert not set_nodelay_on_listener(1)  # nothing listens on port 1 in this process
        assert other.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
