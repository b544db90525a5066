"""From settings to keys, and the bind policy: which processes speak CURVE, which binds are refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tacore.auth.credentials import (
    LOCAL_ADMIN,
    LOCAL_WORKER,
    check_exposure,
    client_keys,
    is_loopback,
    with_local_keys,
    worker_keys,
)
from tacore.auth.keyring import KeyKind, Keyring
from tacore.auth.roles import Role
from tacore.errors import ConfigError
from tacore.settings import Settings


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("*", False), ("10.0.0.5", False), ("::", False), ("eth0", False), ("example.com", False),
])
def test_only_loopback_hosts_keep_the_broker_on_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_without_keys_is_refused() -> None:
    with pytest.raises(ConfigError, match="BROKER_INSECURE"):
        check_exposure(Settings(bind_address="0.0.0.0"))


def test_insecure_mode_allows_it_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "tacore.auth"):
        check_exposure(Settings(bind_address="0.0.0.0", broker_insecure=True))
    assert "INSECURE" in caplog.text


def test_keys_or_loopback_need_no_insecure_mode(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "tacore.auth"):
        check_exposure(Settings(bind_address="0.0.0.0", broker_curve=True))
        check_exposure(Settings())
    assert caplog.text == ""


def test_without_keys_processes_speak_plaintext(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert client_keys(settings) is None and worker_keys(settings) is None


def test_a_key_setting_is_a_name_in_keys_dir_or_a_path(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    made = keyring.generate("alice", KeyKind.CLIENT, Role.READ)
    by_name = client_keys(Settings(data_dir=tmp_path, client_key="alice"))
    by_path = client_keys(Settings(client_key=str(made.secret_file)))
    assert by_name is not None and by_path is not None
    assert by_name.public_key.decode() == made.entry.public_key == by_path.public_key.decode()
    assert by_name.server_key == keyring.server_keys()[0]


def test_server_key_setting_overrides_the_key_file(tmp_path: Path) -> None:
    made = Keyring(tmp_path / "a").generate("alice", KeyKind.CLIENT, Role.READ)
    other = Keyring(tmp_path / "b").ensure_server()
    keys = client_keys(Settings(client_key=str(made.secret_file), server_key=other.decode()))
    assert keys is not None and keys.server_key == other


def test_a_missing_key_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WORKER_KEY"):
        worker_keys(Settings(data_dir=tmp_path, worker_key="nobody"))
    with pytest.raises(ConfigError, match=r"CLIENT_KEY.*local key"):
        client_keys(Settings(data_dir=tmp_path, broker_curve=True))


def test_serve_makes_local_keys_once_and_keeps_them(tmp_path: Path) -> None:
    settings = with_local_keys(Settings(data_dir=tmp_path, broker_curve=True))
    assert settings.client_key is not None and settings.client_key.endswith(f"{LOCAL_ADMIN}.key_secret")
    keyring = Keyring(tmp_path / "keys")
    admin, worker = keyring.active(LOCAL_ADMIN), keyring.active(LOCAL_WORKER)
    assert admin is not None and admin.role is Role.ADMIN and worker is not None and worker.kind is KeyKind.WORKER
    again = with_local_keys(Settings(data_dir=tmp_path, broker_curve=True))
    assert again.client_key == settings.client_key and keyring.active(LOCAL_ADMIN) == admin
    keys = worker_keys(again)
    assert keys is not None and keys.public_key.decode() == worker.public_key


def test_a_local_key_whose_file_went_missing_is_replaced(tmp_path: Path) -> None:
    with_local_keys(Settings(data_dir=tmp_path, broker_curve=True))
    keyring = Keyring(tmp_path / "keys")
    old = keyring.active(LOCAL_WORKER)
    keyring.secret_file(LOCAL_WORKER).unlink()
    with_local_keys(Settings(data_dir=tmp_path, broker_curve=True))
    new = keyring.active(LOCAL_WORKER)
    assert old is not None and new is not None and new.public_key != old.public_key
    assert any(e.public_key == old.public_key and not e.active for e in keyring.entries())


def test_serve_keeps_keys_that_are_set(tmp_path: Path) -> None:
    settings = with_local_keys(Settings(data_dir=tmp_path, broker_curve=True, client_key="/elsewhere/me.key_secret"))
    assert settings.client_key == "/elsewhere/me.key_secret"
    assert Keyring(tmp_path / "keys").active(LOCAL_ADMIN) is None
