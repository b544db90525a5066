"""The broker's copy of the allow-list: read once, read again only when ``keyring.json`` changes.

Two threads use it: the ZAP handler, at each new connection (so a key revoked a moment ago is
refused at once), and the broker, once per heartbeat (so live connections of a revoked key lose
their rights within one interval). A check is one ``stat``; a snapshot is swapped whole, so a
reader never sees half an update. A keyring that cannot be read keeps the last good snapshot and
is logged, rather than locking everyone out (or in) because of a bad edit.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

from tacore.auth.keyring import KeyEntry, KeyKind, Keyring, KeyringError

log = logging.getLogger("tacore.auth")


@dataclass(frozen=True, slots=True)
class AllowList:
    """Active keys by public key (Z85 text, the ZAP user id)."""

    clients: dict[str, KeyEntry] = field(default_factory=dict)
    workers: dict[str, KeyEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: list[KeyEntry]) -> AllowList:
        active = [e for e in entries if e.active]
        return cls({e.public_key: e for e in active if e.kind is KeyKind.CLIENT},
                   {e.public_key: e for e in active if e.kind is KeyKind.WORKER})


class AllowListWatch:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self.current = AllowList()
        self.generation = 0  # bumped at each change: a reader compares it with the one it last loaded
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the keyring if it changed since the last look; True when the allow-list changed."""
        with self._lock:
            try:
                stat = os.stat(self.keyring.path)
                stamp: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except FileNotFoundError:
                stamp = None
            except OSError as exc:
                log.error("cannot check the keyring %s (%s); keeping the keys read before", self.keyring.path, exc)
                return False
            if stamp == self._stamp:
                return False
            try:
                allowed = AllowList.of(self.keyring.entries())
            except KeyringError as exc:
                log.error("%s; keeping the keys read before", exc)
                return False
            self._stamp = stamp
            changed = allowed != self.current
            self.current = allowed
            if changed:
                self.generation += 1
                log.info("allow-list read: %d client key(s), %d worker key(s)", len(allowed.clients),
                         len(allowed.workers))
            return changed
