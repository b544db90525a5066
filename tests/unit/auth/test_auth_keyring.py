"""Key files: the broker's pair, client and worker keys, revocation, permissions, the allow-list snapshot."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import zmq

from clients.curve import CurveKeys, KeyFileError, load_server_key
from tacore.auth.allowlist import AllowListWatch
from tacore.auth.keyring import KeyKind, Keyring, KeyringError
from tacore.auth.roles import Role


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path / "keys")


def test_generate_writes_a_0600_secret_file_that_a_client_can_load(keyring: Keyring) -> None:
    made = keyring.generate("alice", KeyKind.CLIENT, Role.TRADE)
    assert made.secret_file == keyring.directory / "alice.key_secret"
    assert _mode(made.secret_file) == 0o600
    assert _mode(keyring.directory) == 0o700
    assert _mode(keyring.server_secret_file) == 0o600
    keys = CurveKeys.load(made.secret_file)
    assert keys.public_key.decode() == made.entry.public_key
    assert keys.server_key == keyring.server_keys()[0] == load_server_key(keyring.server_public_file)
    # the pair really is a Curve25519 pair: its public key derives from its secret key
    assert zmq.curve_public(keys.secret_key) == keys.public_key


def test_the_secret_file_is_a_zeromq_certificate(keyring: Keyring) -> None:
    import zmq.auth

    made = keyring.generate("bob", KeyKind.WORKER)
    public, secret = zmq.auth.load_certificate(made.secret_file)
    assert public == made.entry.public_key.encode()
    assert secret is not None and zmq.curve_public(secret) == public


def test_the_broker_pair_is_made_once(keyring: Keyring) -> None:
    first = keyring.ensure_server()
    keyring.generate("alice", KeyKind.CLIENT, Role.READ)
    assert keyring.ensure_server() == first


def test_the_keyring_lists_kind_role_and_revocation(keyring: Keyring) -> None:
    keyring.generate("reader", KeyKind.CLIENT, Role.READ)
    keyring.generate("pool", KeyKind.WORKER)
    revoked = keyring.revoke("reader")
    entries = {e.name: e for e in keyring.entries()}
    assert entries["pool"].kind is KeyKind.WORKER and entries["pool"].role is None and entries["pool"].active
    assert entries["reader"].role is Role.READ and not entries["reader"].active
    assert revoked.revoked_at is not None
    assert not (keyring.directory / "reader.key_secret").exists()
    raw = json.loads(keyring.path.read_text())
    assert all("secret" not in json.dumps(item) for item in raw["keys"])


def test_a_revoked_name_can_be_made_again_with_a_new_key(keyring: Keyring) -> None:
    old = keyring.generate("alice", KeyKind.CLIENT, Role.READ)
    keyring.revoke("alice")
    new = keyring.generate("alice", KeyKind.CLIENT, Role.ADMIN)
    assert new.entry.public_key != old.entry.public_key
    assert keyring.active("alice") == new.entry


@pytest.mark.parametrize(("name", "kind", "role", "message"), [
    ("alice", KeyKind.CLIENT, Role.READ, "exists"),
    ("server", KeyKind.CLIENT, Role.READ, "key name"),
    ("../escape", KeyKind.CLIENT, Role.READ, "key name"),
    ("nobody", KeyKind.CLIENT, None, "needs a role"),
    ("pool", KeyKind.WORKER, Role.ADMIN, "no role"),
])
def test_bad_generate_requests_are_refused(keyring: Keyring, name: str, kind: KeyKind, role: Role | None,
                                           message: str) -> None:
    keyring.generate("alice", KeyKind.CLIENT, Role.READ)
    with pytest.raises(KeyringError, match=message):
        keyring.generate(name, kind, role)


def test_revoking_an_unknown_key_says_so(keyring: Keyring) -> None:
    with pytest.raises(KeyringError, match="no active key"):
        keyring.revoke("ghost")


def test_a_corrupt_keyring_is_a_clear_error(keyring: Keyring) -> None:
    keyring.generate("alice", KeyKind.CLIENT, Role.READ)
    keyring.path.write_text('{"version": 1, "keys": [{"name": "x"}]}')
    with pytest.raises(KeyringError, match="not a valid keyring"):
        keyring.entries()


def test_the_allow_list_follows_generate_and_revoke(keyring: Keyring) -> None:
    alice = keyring.generate("alice", KeyKind.CLIENT, Role.TRADE).entry
    watch = AllowListWatch(keyring)
    assert set(watch.current.clients) == {alice.public_key} and not watch.current.workers
    generation = watch.generation
    pool = keyring.generate("pool", KeyKind.WORKER).entry
    assert watch.refresh()
    assert set(watch.current.workers) == {pool.public_key}
    keyring.revoke("alice")
    assert watch.refresh()
    assert watch.current.clients == {}
    assert watch.generation == generation + 2
    assert not watch.refresh()  # nothing changed since


def test_a_corrupt_keyring_keeps_the_last_good_allow_list(keyring: Keyring) -> None:
    alice = keyring.generate("alice", KeyKind.CLIENT, Role.READ).entry
    watch = AllowListWatch(keyring)
    keyring.path.write_text("{not json")
    assert not watch.refresh()
    assert set(watch.current.clients) == {alice.public_key}


def test_key_files_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        CurveKeys.load(tmp_path / "missing.key_secret")
    public_only = tmp_path / "x.key"
    public_only.write_text(f'curve\n    public-key = "{zmq.curve_keypair()[0].decode()}"\n')
    with pytest.raises(KeyFileError, match="secret-key"):
        CurveKeys.load(public_only)
    with pytest.raises(KeyFileError, match="Z85"):
        load_server_key("~" * 40)
