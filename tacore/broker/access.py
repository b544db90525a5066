"""The broker's authorisation: CURVE on both sockets, and which key may do what.

With keys on (``BROKER_CURVE``) each message carries its connection's ZAP user id (the key's public
key); the broker reads it per message and looks it up in two small dicts: the key's role rank and
the rank the method requires. It is read per message rather than cached per routing identity
because a routing identity outlives its connection: a peer that connects after another left may
claim the same identity, and a cache by identity would hand it the other key's role. Reading it
costs about 0.3 us a message (``benchmarks/bench_broker.py --curve`` measures the whole).

Without keys every client is ``admin`` and none of this runs: the broker's loop checks ``access``
for None and takes its usual path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import zmq

from tacore.auth.allowlist import AllowListWatch
from tacore.auth.credentials import check_exposure
from tacore.auth.keyring import Keyring
from tacore.auth.roles import Role, RoleTable
from tacore.auth.zap import DOMAIN_CLIENTS, DOMAIN_WORKERS, AllowListAuthenticator
from tacore.settings import Settings

log = logging.getLogger("tacore.broker")


class BrokerAccess:
    """Ranks by key and by method; ``permits`` is the per-request check."""

    def __init__(self, watch: AllowListWatch, table: RoleTable, authenticator: AllowListAuthenticator | None = None,
                 expected_methods: Iterable[str] = ()) -> None:
        self.watch = watch
        self.table = table
        self.authenticator = authenticator
        self.client_rank: dict[str, int] = {}  # client public key -> rank of its role (active keys only)
        self.client_roles: dict[str, Role] = {}
        self.worker_keys: frozenset[str] = frozenset()
        self.names: dict[str, str] = {}  # public key -> key name, for logs and status (revoked ones stay)
        self.required: dict[str, int] = {}  # declared method -> rank it requires
        self.declared_roles: dict[str, Role | None] = {}
        self._generation = -1
        self._load()
        for method in expected_methods:
            self.declare(method, None)

    # -- per request ------------------------------------------------------------------------------
    def permits(self, user: str, method: str) -> bool:
        """Whether the client key ``user`` may call ``method`` (False for a key revoked since it connected)."""
        rank = self.client_rank.get(user)
        if rank is None:
            return False
        need = self.required.get(method)
        return rank >= (need if need is not None else self.table.required(method).rank)

    def refusal(self, user: str, method: str) -> tuple[str, dict[str, Any]]:
        """Why ``permits`` said no: the message and details of the FORBIDDEN reply."""
        name = self.names.get(user, user)
        if user not in self.client_rank:
            return (f"key {name!r} was revoked; it may no longer call anything", {"key": name})
        need = self.role_of(method)
        role = self.client_roles[user]
        return (f"{method} requires the {need} role; key {name!r} has {role}",
                {"method": method, "required_role": str(need), "key": name, "key_role": str(role)})

    def role_of(self, method: str) -> Role:
        return self.table.required(method, self.declared_roles.get(method))

    # -- workers ----------------------------------------------------------------------------------
    def is_worker_key(self, user: str | None) -> bool:
        return user is not None and user in self.worker_keys

    def declare(self, method: str, role: Role | None) -> None:
        """A live worker declares ``method`` (with the role it may declare); its required rank follows."""
        self.declared_roles[method] = role
        self.required[method] = self.table.required(method, role).rank

    def declare_all(self, roles: Mapping[str, Role | None]) -> None:
        for method, role in roles.items():
            self.declare(method, role)

    # -- keys -------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read the allow-list if it changed (once per heartbeat); True when it did.

        The ZAP thread may have read the change first (at a new connection): the generation, not
        ``refresh``'s answer, says whether this copy is behind.
        """
        self.watch.refresh()
        if self.watch.generation == self._generation:
            return False
        self._load()
        return True

    def _load(self) -> None:
        self._generation = self.watch.generation
        allowed = self.watch.current
        self.client_roles = {key: entry.role for key, entry in allowed.clients.items() if entry.role is not None}
        self.client_rank = {key: role.rank for key, role in self.client_roles.items()}
        self.worker_keys = frozenset(allowed.workers)
        self.names.update({key: entry.name for key, entry in (allowed.clients | allowed.workers).items()})

    def name(self, user: str | None) -> str | None:
        return None if user is None else self.names.get(user, user)

    def close(self) -> None:
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None


def secure_sockets(settings: Settings, context: zmq.Context[Any], frontend: zmq.Socket[Any],
                   backend: zmq.Socket[Any], expected_methods: Iterable[str] = ()) -> BrokerAccess | None:
    """With BROKER_CURVE on: start the ZAP handler and make both sockets CURVE servers (before they bind).

    Returns None with keys off; then ``check_exposure`` has already refused a bind beyond loopback
    unless BROKER_INSECURE is set.
    """
    check_exposure(settings)
    if not settings.broker_curve:
        return None
    keyring = Keyring(settings.keys_path)
    keyring.ensure_server()
    public, secret = keyring.server_keys()
    watch = AllowListWatch(keyring)
    # The handler must answer before the first handshake: libzmq admits any key when no handler is bound.
    authenticator = AllowListAuthenticator(context, watch)
    authenticator.start()
    for sock, domain in ((frontend, DOMAIN_CLIENTS), (backend, DOMAIN_WORKERS)):
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    access = BrokerAccess(watch, RoleTable(), authenticator, expected_methods)
    log.info("keys on (CURVE): broker key %s, %d client and %d worker key(s) allowed, keys in %s",
             public.decode(), len(access.client_rank), len(access.worker_keys), settings.keys_path)
    missing = [kind for kind, keys in (("client", access.client_rank), ("worker", access.worker_keys)) if not keys]
    if missing:
        log.warning("keys on, but no %s key is allowed yet: each is refused until `tacore keys generate` makes one",
                    " or ".join(missing))
    return access
