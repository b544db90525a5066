"""Ports for the servers a service starts as children (the demo's simulators): outside the ephemeral range.

The service picks a simulator's port before the child that serves it binds it (the data agent is configured
with its URL first), so for a moment the port is free for anyone. Every outgoing connection on the host takes
its source port from the kernel's ephemeral range (``net.ipv4.ip_local_port_range``), and a port found by
binding port 0 lies in that same range: on a busy host a connection took one in the second before the
simulator bound it (seen in CI: ``address already in use``, restarted in vain, a demo without its exchange).
A port below the range is never handed out implicitly, so only another explicit bind of that very port
could take it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: the kernel's default when the range cannot be read
_DEFAULT_RANGE = (32768, 60999)
#: ports below this are left to well-known services
_LOWEST = 10_000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for implicitly bound ports (the default when it cannot be read)."""
    try:
        low, high = (int(x) for x in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_RANGE
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def server_port(rng: random.Random | None = None) -> int:
    """A free 127.0.0.1 port below the ephemeral range, tried at random; the kernel's pick (port 0) when
    the range leaves too little room below it."""
    low, _ = ephemeral_range()
    pick = rng or random.SystemRandom()
    if low - _LOWEST >= 1000:
        for _ in range(200):
            port = pick.randrange(_LOWEST, low)
            if _bindable(port):
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen
