"""A child server's port is picked below the kernel's ephemeral range, where no outgoing connection takes it."""

from __future__ import annotations

import random
import socket

from tacore.local_ports import ephemeral_range, server_port


def test_the_port_is_free_and_below_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    assert 0 < low < high
    for _ in range(20):
        port = server_port()
        assert 10_000 <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free: the child can bind it


def test_a_port_someone_holds_is_never_returned() -> None:
    low, _ = ephemeral_range()
    first = random.Random(7).randrange(10_000, low)  # the pick the seeded generator makes first
    with socket.socket() as held:
        held.bind(("127.0.0.1", first))
        port = server_port(random.Random(7))
    assert port != first and 10_000 <= port < low
