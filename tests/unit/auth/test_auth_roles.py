"""The role table: exact names, declarations, families, the default."""

from __future__ import annotations

import pytest

from tacore.auth.roles import DEFAULT_ROLE, METHOD_ROLES, Role, RoleTable, parse_role


def test_roles_are_ordered_read_trade_admin() -> None:
    assert Role.READ.rank < Role.TRADE.rank < Role.ADMIN.rank


def test_the_issue_s_methods_need_more_than_read() -> None:
    table = RoleTable()
    assert table.required("execute.order") is Role.TRADE
    for method in ("kline.add_stream", "kline.add_symbols", "kline.remove_stream"):
        assert table.required(method).rank > Role.READ.rank, method
    assert table.required("broker.status") is Role.ADMIN and table.required("broker.preempt") is Role.ADMIN
    assert table.required("broker.cancel") is Role.READ  # a client cancels its own calls
    for method in ("health.check", "get.market_data", "kline.history", "kline.status", "broker.metrics"):
        assert table.required(method) is DEFAULT_ROLE is Role.READ


def test_a_family_covers_new_methods_that_declare_nothing() -> None:
    table = RoleTable()
    assert table.required("order.submit") is Role.TRADE
    assert table.required("flow.start") is Role.TRADE
    assert table.required("orders.list") is Role.READ  # "order.*" is a family, not a string prefix


def test_a_declaration_sets_the_role_of_a_method_the_table_does_not_name() -> None:
    table = RoleTable()
    assert table.required("quotes.spread", Role.TRADE) is Role.TRADE
    assert table.required("order.list", Role.READ) is Role.READ  # a read-only member of a trading family


def test_a_declaration_never_lowers_a_method_the_table_names() -> None:
    table = RoleTable()
    assert table.required("execute.order", Role.READ) is Role.TRADE
    assert table.required("execute.order", Role.ADMIN) is Role.ADMIN


def test_the_longest_family_wins() -> None:
    table = RoleTable({"order.*": Role.TRADE, "order.admin.*": Role.ADMIN}, default=Role.READ)
    assert table.required("order.admin.purge") is Role.ADMIN
    assert table.required("order.place") is Role.TRADE
    assert table.required("other") is Role.READ


def test_unknown_role_names_are_refused_with_the_valid_ones() -> None:
    assert parse_role("trade") is Role.TRADE
    with pytest.raises(ValueError, match="read, trade, admin"):
        parse_role("root")


def test_the_table_names_only_known_roles() -> None:
    assert all(isinstance(role, Role) for role in METHOD_ROLES.values())
