"""The broker's per-request check: key roles against method roles, revocation, declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tacore.auth.allowlist import AllowListWatch
from tacore.auth.keyring import KeyKind, Keyring
from tacore.auth.roles import Role, RoleTable
from tacore.broker.access import BrokerAccess


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Keyring, BrokerAccess, dict[str, str]]:
    keyring = Keyring(tmp_path)
    keys = {name: keyring.generate(name, KeyKind.CLIENT, role).entry.public_key
            for name, role in (("reader", Role.READ), ("trader", Role.TRADE), ("admin", Role.ADMIN))}
    keys["pool"] = keyring.generate("pool", KeyKind.WORKER).entry.public_key
    access = BrokerAccess(AllowListWatch(keyring), RoleTable(), expected_methods=["health.check", "execute.order"])
    return keyring, access, keys


def test_a_read_key_may_read_but_not_trade_or_configure(setup: tuple[Keyring, BrokerAccess, dict[str, str]]) -> None:
    _, access, keys = setup
    assert access.permits(keys["reader"], "health.check")
    assert access.permits(keys["reader"], "broker.metrics")
    assert not access.permits(keys["reader"], "broker.status")
    for method in ("execute.order", "kline.add_stream", "kline.add_symbols", "kline.remove_stream", "order.cancel"):
        assert not access.permits(keys["reader"], method), method
    message, details = access.refusal(keys["reader"], "execute.order")
    assert "requires the trade role" in message and details["key"] == "reader" and details["key_role"] == "read"


def test_trade_and_admin_keys_reach_what_their_role_covers(setup: tuple[Keyring, BrokerAccess, dict[str, str]]) -> None:
    _, access, keys = setup
    assert access.permits(keys["trader"], "execute.order")
    assert not access.permits(keys["trader"], "kline.add_stream")
    assert access.permits(keys["admin"], "kline.add_stream") and access.permits(keys["admin"], "execute.order")


def test_a_worker_key_or_an_unknown_key_may_call_nothing(setup: tuple[Keyring, BrokerAccess, dict[str, str]]) -> None:
    _, access, keys = setup
    assert not access.permits(keys["pool"], "health.check")
    assert not access.permits("x" * 40, "health.check")
    assert access.is_worker_key(keys["pool"]) and not access.is_worker_key(keys["admin"])


Setup = tuple[Keyring, BrokerAccess, dict[str, str]]


def test_a_revoked_key_loses_its_rights_at_the_next_refresh(setup: Setup) -> None:
    keyring, access, keys = setup
    keyring.revoke("trader")
    assert access.permits(keys["trader"], "execute.order")  # until the broker looks (once per heartbeat)
    assert access.refresh()
    assert not access.permits(keys["trader"], "health.check")
    assert "revoked" in access.refusal(keys["trader"], "health.check")[0]
    assert not access.refresh()


def test_the_zap_thread_reading_a_change_first_does_not_hide_it(setup: Setup) -> None:
    keyring, access, keys = setup
    keyring.revoke("pool")
    assert access.watch.refresh()  # what the ZAP handler does at a new connection
    assert access.refresh()
    assert not access.is_worker_key(keys["pool"])


def test_a_declared_role_applies_to_a_method_the_table_does_not_name(
        setup: tuple[Keyring, BrokerAccess, dict[str, str]]) -> None:
    _, access, keys = setup
    assert access.permits(keys["reader"], "quotes.place")
    access.declare("quotes.place", Role.TRADE)
    assert not access.permits(keys["reader"], "quotes.place")
    assert access.permits(keys["trader"], "quotes.place")
    access.declare("execute.order", Role.READ)  # never lowers a listed method
    assert not access.permits(keys["reader"], "execute.order")
