"""From settings to keys: what each TACore process presents to the broker, and whether the broker may bind.

A process speaks CURVE to the broker when it has a key: ``CLIENT_KEY`` (clients: ``tacore call``,
the sidecar) or ``WORKER_KEY`` (the pool, ``tacore worker``, the data agent) set, or ``BROKER_CURVE``
on, where they default to the local keys ``tacore serve`` makes for its own processes. A key setting
is a ``.key_secret`` file or the name of one in ``KEYS_DIR``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from pathlib import Path

from clients.curve import CurveKeys, KeyFileError
from tacore.auth.keyring import SECRET_SUFFIX, KeyKind, Keyring, KeyringError
from tacore.auth.roles import Role
from tacore.errors import ConfigError
from tacore.settings import Settings

log = logging.getLogger("tacore.auth")

#: The keys ``tacore serve`` makes (once) for its own processes when BROKER_CURVE is on.
LOCAL_ADMIN = "local-admin"
LOCAL_WORKER = "local-worker"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the port on this machine (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", "0.0.0.0" is an address; an interface or host name may be anything


def check_exposure(settings: Settings) -> None:
    """Refuse to bind beyond loopback without keys unless BROKER_INSECURE says so (then warn)."""
    if settings.broker_curve or is_loopback(settings.bind_address):
        return
    if not settings.broker_insecure:
        raise ConfigError(
            f"BIND_ADDRESS={settings.bind_address} exposes the broker beyond this machine without keys: anyone "
            "who reaches ports {0} and {1} could call every method or register as a worker. Turn keys on "
            "(BROKER_CURVE=true, see docs/security.md), or set BROKER_INSECURE=true to accept that".format(
                settings.zmq_frontend_port, settings.zmq_backend_port))
    log.warning("INSECURE: the broker binds %s without keys (BROKER_INSECURE=true): anyone who reaches ports %d "
                "and %d can call every method and register workers", settings.bind_address,
                settings.zmq_frontend_port, settings.zmq_backend_port)


def client_keys(settings: Settings) -> CurveKeys | None:
    """The keys a client process presents, or None to speak plaintext."""
    return _keys(settings, settings.client_key, LOCAL_ADMIN, "CLIENT_KEY")


def worker_keys(settings: Settings) -> CurveKeys | None:
    """The keys a worker process presents, or None to speak plaintext."""
    return _keys(settings, settings.worker_key, LOCAL_WORKER, "WORKER_KEY")


def key_file(settings: Settings, reference: str) -> Path:
    """A key setting's file: a path as given, or a bare name in KEYS_DIR."""
    if "/" in reference or reference.endswith(SECRET_SUFFIX):
        return Path(reference).expanduser()
    return settings.keys_path / f"{reference}{SECRET_SUFFIX}"


def _keys(settings: Settings, reference: str | None, local: str, setting: str) -> CurveKeys | None:
    if reference is None and not settings.broker_curve:
        return None
    path = key_file(settings, reference or local)
    server = settings.server_key
    if server is None and (settings.keys_path / "server.key").is_file():
        server = str(settings.keys_path / "server.key")
    try:
        return CurveKeys.load(path, server)
    except KeyFileError as exc:
        hint = "" if reference is not None else f" (BROKER_CURVE is on and {setting} is unset, so the local key)"
        raise ConfigError(f"{setting}: {exc}{hint}") from None


def with_local_keys(settings: Settings) -> Settings:
    """``settings`` for ``tacore serve``'s processes: with BROKER_CURVE on, every unset key names a local one.

    The local keys (``local-admin``, a client key with role admin, for the sidecar; ``local-worker``
    for the pool and the data agent) are made the first time and kept; one whose secret file went
    missing is revoked and made anew.
    """
    if not settings.broker_curve:
        return settings
    keyring = Keyring(settings.keys_path)
    keyring.ensure_server()
    update: dict[str, str] = {}
    for setting, name, kind, role in (("client_key", LOCAL_ADMIN, KeyKind.CLIENT, Role.ADMIN),
                                      ("worker_key", LOCAL_WORKER, KeyKind.WORKER, None)):
        if getattr(settings, setting) is not None:
            continue
        update[setting] = str(ensure_key(keyring, name, kind, role))
    return settings.model_copy(update=update)


def ensure_key(keyring: Keyring, name: str, kind: KeyKind, role: Role | None, secret_file: Path | None = None) -> Path:
    """The secret file of the active key ``name`` (at ``secret_file``, default KEYS_DIR/NAME.key_secret), made if
    there is none usable; a key of that name but another kind or role is an error, never replaced."""
    entry = keyring.active(name)
    path = secret_file or keyring.secret_file(name)
    if entry is not None and (entry.kind is not kind or entry.role != role):
        held = f"a {entry.kind} key" + (f" with role {entry.role}" if entry.role else "")
        raise KeyringError(f"key {name!r} exists as {held}: revoke it first, or choose another name")
    if entry is not None and path.is_file():
        try:
            if CurveKeys.load(path).public_key.decode() == entry.public_key:
                return path
        except KeyFileError:
            pass
    if entry is not None:
        log.warning("local key %s has no usable secret file; revoking it and making a new one", name)
        with contextlib.suppress(KeyringError):
            keyring.revoke(name)
    generated = keyring.generate(name, kind, role, secret_file)
    log.info("made the local %s key %s (%s)", kind, name, generated.secret_file)
    return generated.secret_file
