"""A hand-written peer of the broker: a raw DEALER that speaks TAW3 the way an attacker would."""

from __future__ import annotations

import json
import os
from typing import Any

import zmq

from clients.curve import CurveKeys, HandshakeWatch
from tacore.protocol import worker as wp


def dealer(endpoint: str, keys: CurveKeys | None = None) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        keys.apply(sock)
    sock.connect(endpoint)
    return sock


def watched_dealer(endpoint: str, keys: CurveKeys) -> tuple[zmq.Socket[Any], HandshakeWatch]:
    """A CURVE dealer whose handshake events are watched from before it connects: a watch attached after
    ``connect`` can miss the first refusal (seen in CI: no refusal within 5 s on a loaded machine)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    keys.apply(sock)
    watch = HandshakeWatch(sock)
    sock.connect(endpoint)
    return sock, watch


def send_ready(sock: zmq.Socket[Any], worker_id: str, methods: dict[str, dict[str, Any]]) -> None:
    payload = {"worker_id": worker_id, "pid": os.getpid(), "host": "rogue", "kind": "worker", "credit": 4,
               "methods": methods}
    sock.send_multipart([wp.READY, json.dumps(payload).encode()])


def messages(sock: zmq.Socket[Any], wait_ms: int) -> list[list[bytes]]:
    """Everything ``sock`` receives within ``wait_ms``."""
    received = []
    while sock.poll(wait_ms):
        received.append(sock.recv_multipart())
        wait_ms = 50
    return received


def disconnect_reason(received: list[list[bytes]]) -> str | None:
    """The reason of the first DISCONNECT among ``received``."""
    for frames in received:
        if frames[0] == wp.DISCONNECT:
            return frames[1].decode() if len(frames) > 1 else ""
    return None
