"""CurveZMQ keys for a client or a worker: its own key pair and the broker's public key.

A broker with keys on (``BROKER_CURVE``) encrypts both of its ports and accepts only the keys on its
allow-list. ``tacore keys generate NAME`` writes a key file (mode 0600) in the ZeroMQ certificate
format that holds the pair and the broker's public key; copy it to the machine that uses it::

    keys = CurveKeys.load("alice.key_secret")            # or CurveKeys.load(path, server_key="...")
    with LazyPirateClient("tcp://broker:5555", curve=keys) as client: ...

A broker that refuses a key (unknown, revoked, or a worker key on the client port) cannot say so in
a reply: the handshake just fails. ``HandshakeWatch`` reads that failure from the socket's monitor,
so the clients raise ``KeyRefused`` instead of a bare timeout.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

KEY_LENGTH = 40  # a 32-byte Curve25519 key in Z85
_FIELD = re.compile(r'^\s*([a-z-]+)\s*=\s*"([^"]*)"\s*$')


class KeyFileError(ValueError):
    """A key file or key that cannot be used (missing, unreadable, not Z85)."""


def check_key(key: str | bytes, what: str) -> bytes:
    """``key`` as Z85 bytes; KeyFileError unless it is a 40-character Z85 Curve25519 key."""
    raw = key.encode("ascii", "replace") if isinstance(key, str) else key
    if len(raw) != KEY_LENGTH:
        raise KeyFileError(f"{what} is {len(raw)} characters, not a {KEY_LENGTH}-character Z85 key")
    try:
        z85.decode(raw)
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(f"{what} is not Z85") from None
    return raw


def read_key_file(path: str | Path) -> dict[str, str]:
    """Every ``name = "value"`` line of a ZeroMQ certificate file (``public-key``, ``secret-key``...)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match:
            fields[match.group(1)] = match.group(2)
    return fields


def format_key_file(title: str, public_key: bytes, secret_key: bytes | None = None,
                    server_key: bytes | None = None, metadata: dict[str, str] | None = None) -> str:
    """A certificate in ZeroMQ's format (readable by ``zmq.auth.load_certificate``) with TACore's extras."""
    lines = [f"#   ****  Generated on {time.strftime('%Y-%m-%d %H:%M:%S')} by tacore keys  ****",
             f"#   {title}"]
    if secret_key is not None:
        lines.append("#   Holds a secret key: keep it private (mode 0600), never commit or share it.")
    lines += ["", "metadata"]
    lines += [f'    {name} = "{value}"' for name, value in (metadata or {}).items()]
    lines += ["curve", f'    public-key = "{public_key.decode()}"']
    if secret_key is not None:
        lines.append(f'    secret-key = "{secret_key.decode()}"')
    if server_key is not None:
        lines += ["broker", f'    server-key = "{server_key.decode()}"']
    return "\n".join(lines) + "\n"


def load_server_key(value: str | Path) -> bytes:
    """The broker's public key from a Z85 string or from a certificate file (``server.key``)."""
    text = str(value)
    if len(text) == KEY_LENGTH and not Path(text).exists():
        return check_key(text, "the broker's public key")
    fields = read_key_file(value)
    if "public-key" not in fields:
        raise KeyFileError(f"{value} holds no public-key")
    return check_key(fields["public-key"], f"public-key in {value}")


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """A CURVE client's keys, Z85: its own pair and the server's (the broker's) public key."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes

    @classmethod
    def load(cls, key_file: str | Path, server_key: str | Path | None = None) -> CurveKeys:
        """Read a key file; ``server_key`` (Z85 or a ``server.key`` file) overrides the one it carries."""
        fields = read_key_file(key_file)
        missing = [name for name in ("public-key", "secret-key") if name not in fields]
        if missing:
            raise KeyFileError(f"{key_file} holds no {' or '.join(missing)} (is it a .key_secret file?)")
        if server_key is not None:
            server = load_server_key(server_key)
        elif "server-key" in fields:
            server = check_key(fields["server-key"], f"server-key in {key_file}")
        else:
            raise KeyFileError(f"{key_file} does not name the broker's key: set the server key (SERVER_KEY)")
        return cls(check_key(fields["public-key"], f"public-key in {key_file}"),
                   check_key(fields["secret-key"], f"secret-key in {key_file}"), server)

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE client of the broker; call before ``connect``."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)


_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_SUCCEEDED)


class HandshakeWatch:
    """Whether the broker refused a CURVE socket's key; read only when a call went unanswered.

    Works for plain and asyncio sockets alike: the monitor is read through a plain socket in the
    same context, never awaited.
    """

    def __init__(self, sock: zmq.Socket[Any]) -> None:
        self._sock = sock
        address = f"inproc://tacore-handshake-{uuid.uuid4().hex}"
        sock.monitor(address, _HANDSHAKE_EVENTS)
        context: zmq.Context[Any] = zmq.Context.shadow(sock.context.underlying)
        self._monitor: zmq.Socket[Any] | None = context.socket(zmq.PAIR)
        self._monitor.connect(address)
        self.refusal: str | None = None

    def check(self) -> str | None:
        """The last handshake failure seen (None once a handshake succeeded after it)."""
        monitor = self._monitor
        while monitor is not None and monitor.poll(0):
            event = parse_monitor_message(monitor.recv_multipart())
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.refusal = None
            elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.refusal = f"the broker refused this key (ZAP status {event['value']})"
            else:
                self.refusal = "the CURVE handshake with the broker failed (wrong broker key, or not a CURVE broker)"
        return self.refusal

    def close(self) -> None:
        """Stop monitoring; call before closing the socket."""
        if self._monitor is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
