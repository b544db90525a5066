"""What the request log keeps of a call: its params with secrets redacted, bounded; its error message."""

from __future__ import annotations

import orjson

from tacore.store.request_trace import PARAMS_LIMIT, error_column, is_secret, params_column, redact


def test_secret_named_fields_are_redacted_at_any_depth_and_others_kept() -> None:
    params = {"symbol": "BTCUSDT", "quantity": "2", "api_key": "k1", "apiKey": "k2", "X-MBX-APIKEY": "k3",
              "nested": {"secret": "s", "password": "p", "signature": "sig", "token": "t", "list": [{"pwd": "x"}]},
              "client_order_id": "abc"}
    shown = redact(params)
    assert shown["symbol"] == "BTCUSDT" and shown["quantity"] == "2" and shown["client_order_id"] == "abc"
    assert shown["api_key"] == shown["apiKey"] == shown["X-MBX-APIKEY"] == "***"
    assert shown["nested"]["secret"] == shown["nested"]["password"] == shown["nested"]["signature"] == "***"
    assert shown["nested"]["token"] == "***" and shown["nested"]["list"] == [{"pwd": "***"}]
    assert not any(is_secret(name) for name in ("symbol", "action", "order_type", "time_in_force", "account"))


def test_a_password_in_a_url_is_redacted_in_params_and_messages() -> None:
    assert redact({"url": "postgresql://tacore:hunter2@db:5432/x"}) == {"url": "postgresql://tacore:***@db:5432/x"}
    reply = orjson.dumps({"status": "error", "error": {"code": "UNAVAILABLE",
                                                       "message": "ledger at mysql://u:pw@h/db is down"}}).decode()
    assert error_column(reply) == "ledger at mysql://u:***@h/db is down"


def test_params_column_from_a_request_its_size_or_nothing() -> None:
    request = {"request_id": "r1", "method": "execute.order", "params": {"symbol": "AAPL", "secret_key": "x"}}
    assert orjson.loads(params_column(request) or "") == {"symbol": "AAPL", "secret_key": "***"}
    assert orjson.loads(params_column({"method": "health.check"}) or "") == {}
    assert orjson.loads(params_column(20_000) or "") == {"_omitted": "a request of 20000 bytes"}
    assert params_column(None) is None
    big = params_column({"params": {"text": "x" * (2 * PARAMS_LIMIT)}}) or ""
    assert len(orjson.loads(big)["_truncated"]) == PARAMS_LIMIT


def test_error_column_reads_the_message_and_bounds_it() -> None:
    assert error_column(None) is None
    assert error_column("not json at all") == "not json at all"
    long = orjson.dumps({"error": {"code": "INTERNAL", "message": "m" * 5000}}).decode()
    assert error_column(long) == "m" * 1000


def test_error_column_names_the_fields_of_invalid_params() -> None:
    reply = orjson.dumps({"error": {"code": "INVALID_PARAMS", "message": "invalid params for execute.order",
                                    "details": [{"field": "quantity", "message": "must be greater than 0"},
                                                {"field": None, "message": "extra"}]}}).decode()
    assert error_column(reply) == "invalid params for execute.order (quantity: must be greater than 0; -: extra)"
