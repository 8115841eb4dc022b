"""Ports for local room processes come from below the ephemeral range and are never handed out twice."""

from __future__ import annotations

import socket

from workers.local.stack import EPHEMERAL_RANGE, free_port


def test_ports_are_listenable_distinct_and_below_the_ephemeral_range() -> None:
    ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(100)]
    assert len(set(ports)) == len(ports)
    assert all(port < ephemeral_low for port in ports), "an outgoing connection could take such a port first"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))
        sock.listen()
