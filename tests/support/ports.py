"""Ports for the services a test starts: below the ephemeral range (``tacore.local_ports``), so no outgoing
connection of another test takes one between the pick and the service's bind."""

from __future__ import annotations

from tacore.local_ports import server_port


def free_port() -> int:
    return server_port()


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
