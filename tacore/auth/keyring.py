"""The key files of an authenticated broker: its own key pair and the allow-list of client and worker keys.

``KEYS_DIR`` (default ``DATA_DIR/keys``, mode 0700) holds:

    keyring.json          the allow-list: each key's name, kind (client or worker), role, public key,
                          when it was made and, once revoked, when
    server.key            the broker's public key (clients and workers need it; not secret)
    server.key_secret     the broker's key pair (0600)
    <name>.key_secret     a client's or worker's pair plus the broker's public key (0600): copy it to
                          the machine that uses it, where CLIENT_KEY or WORKER_KEY names it

Every change rewrites ``keyring.json`` whole (a new file renamed over the old) under a lock, so the
broker, which re-reads it when its stamp changes, never sees half a file, and two ``tacore keys``
commands never lose each other's change. Revoked keys stay listed (with ``revoked_at``) and their
secret file is deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import zmq

from clients.curve import KeyFileError, check_key, format_key_file, read_key_file
from tacore.auth.roles import Role, parse_role
from tacore.errors import ConfigError

KEYRING_FILE = "keyring.json"
SERVER_NAME = "server"
SECRET_SUFFIX = ".key_secret"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = 1


class KeyringError(ConfigError):
    """The keys directory or one of its files is unusable, or a key command cannot be done."""


class KeyKind(StrEnum):
    CLIENT = "client"
    WORKER = "worker"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    name: str
    kind: KeyKind
    role: Role | None  # clients only
    public_key: str  # Z85; the ZAP user id of its connections
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind), "role": None if self.role is None else str(self.role)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeyEntry:
        kind = KeyKind(raw["kind"])
        role = parse_role(raw["role"]) if raw.get("role") is not None else None
        if kind is KeyKind.CLIENT and role is None:
            raise ValueError(f"client key {raw['name']!r} has no role")
        return cls(str(raw["name"]), kind, role, check_key(str(raw["public_key"]), "public_key").decode(),
                   float(raw["created_at"]), None if raw.get("revoked_at") is None else float(raw["revoked_at"]))


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    entry: KeyEntry
    secret_file: Path
    server_key: str


def check_name(name: str) -> str:
    if not _NAME.match(name) or name == SERVER_NAME:
        raise KeyringError(f"key name {name!r}: use 1-64 letters, digits, '_', '.' or '-' (not {SERVER_NAME!r})")
    return name


class Keyring:
    """The keys directory; every method reads the files afresh (they are small and read rarely)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        return self.directory / KEYRING_FILE

    @property
    def server_public_file(self) -> Path:
        return self.directory / f"{SERVER_NAME}.key"

    @property
    def server_secret_file(self) -> Path:
        return self.directory / f"{SERVER_NAME}{SECRET_SUFFIX}"

    def secret_file(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}{SECRET_SUFFIX}"

    # -- reading ----------------------------------------------------------------------------------
    def entries(self) -> list[KeyEntry]:
        """Every key ever made here, revoked ones included, oldest first; [] before the first."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyringError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            raw = json.loads(text)
            if raw.get("version") != _VERSION:
                raise ValueError(f"version {raw.get('version')!r}, expected {_VERSION}")
            return [KeyEntry.from_json(item) for item in raw["keys"]]
        except (ValueError, KeyError, TypeError, AttributeError, KeyFileError) as exc:
            raise KeyringError(f"{self.path} is not a valid keyring: {exc}") from None

    def active(self, name: str) -> KeyEntry | None:
        return next((e for e in self.entries() if e.name == name and e.active), None)

    def server_keys(self) -> tuple[bytes, bytes]:
        """The broker's (public, secret) pair; KeyringError when there is none yet."""
        if not self.server_secret_file.is_file():
            raise KeyringError(f"the broker has no key pair yet ({self.server_secret_file}): run "
                               "`tacore keys generate NAME` (it creates the pair) or start `tacore serve`")
        fields = read_key_file(self.server_secret_file)
        try:
            return (check_key(fields.get("public-key", ""), f"public-key in {self.server_secret_file}"),
                    check_key(fields.get("secret-key", ""), f"secret-key in {self.server_secret_file}"))
        except KeyFileError as exc:
            raise KeyringError(str(exc)) from None

    # -- changing ---------------------------------------------------------------------------------
    def ensure_server(self) -> bytes:
        """The broker's public key, making its pair first if there is none."""
        with self._locked():
            if not self.server_secret_file.is_file():
                public, secret = zmq.curve_keypair()
                _write_private(self.server_secret_file, format_key_file(
                    "ZeroMQ CURVE Secret Certificate of the TACore broker", public, secret,
                    metadata={"name": SERVER_NAME}))
                _write_public(self.server_public_file, format_key_file(
                    "ZeroMQ CURVE Public Certificate of the TACore broker: give it to clients and workers",
                    public, metadata={"name": SERVER_NAME}))
        return self.server_keys()[0]

    def generate(self, name: str, kind: KeyKind, role: Role | None = None,
                 secret_file: Path | None = None) -> GeneratedKey:
        """A new key pair allowed at once; its secret file holds the broker's public key too."""
        check_name(name)
        if kind is KeyKind.CLIENT and role is None:
            raise KeyringError("a client key needs a role (read, trade or admin)")
        if kind is KeyKind.WORKER and role is not None:
            raise KeyringError("worker keys have no role: they can only register workers")
        server = self.ensure_server()
        with self._locked():
            entries = self.entries()
            if any(e.name == name and e.active for e in entries):
                raise KeyringError(f"a key named {name!r} exists: revoke it first, or choose another name")
            public, secret = zmq.curve_keypair()
            target = secret_file or self.secret_file(name)
            metadata = {"name": name, "kind": str(kind)} | ({"role": str(role)} if role is not None else {})
            _write_private(target, format_key_file(f"ZeroMQ CURVE Secret Certificate of TACore {kind} {name!r}",
                                                   public, secret, server_key=server, metadata=metadata))
            entry = KeyEntry(name, kind, role, public.decode(), round(time.time(), 3))
            self._save([*entries, entry])
        return GeneratedKey(entry, target, server.decode())

    def revoke(self, name: str) -> KeyEntry:
        """Take a key off the allow-list (the broker refuses it from its next check) and delete its secret file."""
        with self._locked():
            entries = self.entries()
            for index, entry in enumerate(entries):
                if entry.name == name and entry.active:
                    revoked = KeyEntry(entry.name, entry.kind, entry.role, entry.public_key, entry.created_at,
                                       round(time.time(), 3))
                    entries[index] = revoked
                    self._save(entries)
                    break
            else:
                raise KeyringError(f"no active key named {name!r}")
            secret = self.directory / f"{name}{SECRET_SUFFIX}"
            if secret.is_file() and read_key_file(secret).get("public-key") == entry.public_key:
                secret.unlink()
        return revoked

    def _save(self, entries: list[KeyEntry]) -> None:
        text = json.dumps({"version": _VERSION, "keys": [e.to_json() for e in entries]}, indent=1)
        _write_public(self.path, text + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._make_directory()
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _make_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyringError(f"cannot create the keys directory {self.directory}: {exc.strerror or exc}") from None


def _write_private(path: Path, text: str) -> None:
    _write_atomic(path, text, 0o600)


def _write_public(path: Path, text: str) -> None:
    _write_atomic(path, text, 0o644)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write a new file with ``mode`` from its creation (a secret is never readable by others) and rename it in."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)  # O_CREAT's mode is cut by the umask; this is exact
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise KeyringError(f"cannot write {path}: {exc.strerror or exc}") from None
