"""The broker's ZAP handler: which CURVE keys may connect to which port.

pyzmq's ``ThreadAuthenticator`` answers ZeroMQ's authentication requests from a thread of its own,
and libzmq asks only while a connection is being set up, so the broker's hot path never waits on
it. The two ports are two ZAP domains: ``clients`` admits client keys only, ``workers`` worker keys
only, so a client key cannot even reach the worker port (nor a worker key the client port). The
ZAP user id of an admitted connection is its public key; the broker reads it from each message to
look up the key's role (``tacore/broker/access.py``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from tacore.auth.allowlist import AllowListWatch

log = logging.getLogger("tacore.auth")

DOMAIN_CLIENTS = "clients"
DOMAIN_WORKERS = "workers"
#: A peer refused again and again (ZeroMQ reconnects every 100 ms) is logged once per this many seconds.
_LOG_EVERY_S = 60.0


class AllowListAuthenticator(ThreadAuthenticator):
    """Admits a CURVE key on a domain when the allow-list holds it as that domain's kind, and logs refusals."""

    def __init__(self, context: zmq.Context[Any], watch: AllowListWatch) -> None:
        super().__init__(context, log=logging.getLogger("tacore.auth.zap"))
        self.watch = watch
        self.refused = 0
        self._address = ""
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # (host, key) -> (last logged, refused since)

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(DOMAIN_CLIENTS, self)
        self.configure_curve_callback(DOMAIN_WORKERS, self)

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        await super().handle_zap_message(msg)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the authenticator for each CURVE handshake on ``domain``, ``key`` in Z85."""
        self.watch.refresh()  # one stat: a revocation applies to the very next connection
        allowed = self.watch.current
        public_key = key.decode("ascii", "replace")
        keys = allowed.clients if domain == DOMAIN_CLIENTS else allowed.workers if domain == DOMAIN_WORKERS else {}
        if public_key in keys:
            return True
        self.refused += 1
        other = allowed.workers if domain == DOMAIN_CLIENTS else allowed.clients
        why = (f"it is a {other[public_key].kind} key ({other[public_key].name!r})" if public_key in other
               else "it is not on the allow-list (unknown or revoked)")
        self._log_refusal(domain, public_key, why)
        return False

    def _log_refusal(self, domain: str, public_key: str, why: str) -> None:
        host = self._address.rsplit(":", 1)[0]
        now = time.monotonic()
        last, since = self._logged.get((host, public_key), (0.0, 0))
        if last and now - last < _LOG_EVERY_S:
            self._logged[(host, public_key)] = (last, since + 1)
            return
        if len(self._logged) > 10_000:
            self._logged.clear()
        self._logged[(host, public_key)] = (now, 0)
        again = f" ({since} more refusals in the last minute)" if since else ""
        log.warning("refused a connection to the %s port from %s: key %s, %s%s", domain, self._address,
                    public_key, why, again)
