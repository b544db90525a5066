"""Built-in node types run on plain inputs; user types register with a decorator; outputs are bounded."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
import talib

from tacore.errors import Cancelled, InvalidParams, TACoreError
from tacore.flows.nodes import LocalContext, NodeBase, NodeConfig, NodeFailed, node_type, register_node, run_node
from tacore.flows.nodes.base import _Signal
from tacore.flows.nodes.trade import client_order_id

CLOSES = [10.0, 11.0, 12.0, 13.0, 12.0, 11.0, 12.5, 14.0, 15.0, 14.5]


def price_payload(closes: list[float]) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "interval": "1m", "close": closes,
            "candles": [{"close": str(c), "high": str(c + 1), "low": str(c - 1)} for c in closes]}


def test_rolling_avg_with_window_as_the_document_writes_it() -> None:
    out = run_node("ai_model_node", {"node_class_type": "ai_model_node", "operation": "rolling_avg", "window": 5},
                   {"input": price_payload(CLOSES)}, LocalContext())
    values = out["output"]["values"]
    assert len(values) == len(CLOSES) - 4 and values[0] == pytest.approx(sum(CLOSES[:5]) / 5)
    assert out["output"]["last"] == pytest.approx(sum(CLOSES[-5:]) / 5)


def test_data_processor_reads_any_handle_and_reduces() -> None:
    out = run_node("data_processor", {"operation": "pct_change"}, {"price_data_handle": price_payload([10, 11])},
                   LocalContext())
    assert out["output"]["values"] == [pytest.approx(0.1)]


def test_indicator_matches_talib_and_turns_warmup_into_null() -> None:
    out = run_node("indicator_node", {"indicator": "SMA", "period": 3}, {"price_data_handle": price_payload(CLOSES)},
                   LocalContext())["indicator_handle"]
    expected = talib.SMA(np.asarray(CLOSES), timeperiod=3)
    assert out["values"][:2] == [None, None]
    assert out["values"][2:] == pytest.approx(list(expected[2:]))


def test_condition_emits_only_the_branch_taken() -> None:
    ctx = LocalContext()
    taken = run_node("condition_node", {"op": "gt", "left": "input.last_price", "right": 100},
                     {"input": {"last_price": 101}}, ctx)
    assert set(taken) == {"true"} and taken["true"]["result"] is True
    other = run_node("condition_node", {"op": "gt", "left": "input.last_price", "right": 100},
                     {"input": {"last_price": 99}}, ctx)
    assert set(other) == {"false"}


def test_crossover_compares_the_last_two_points() -> None:
    config = {"op": "crosses_above", "left": "fast.values", "right": "slow.values"}
    up = run_node("condition_node", config, {"fast": {"values": [1, 3]}, "slow": {"values": [2, 2]}}, LocalContext())
    flat = run_node("condition_node", config, {"fast": {"values": [3, 4]}, "slow": {"values": [2, 2]}},
                    LocalContext())
    assert "true" in up and "false" in flat


def test_and_or_of_two_conditions() -> None:
    inputs = {"a": {"result": True}, "b": {"result": False}}
    assert "false" in run_node("condition_node", {"op": "and", "left": "a", "right": "b"}, inputs, LocalContext())
    assert "true" in run_node("condition_node", {"op": "or", "left": "a", "right": "b"}, inputs, LocalContext())


def test_trade_places_one_order_with_an_id_derived_from_flow_cycle_node() -> None:
    calls: list[tuple[str, dict[str, Any], str | None]] = []

    def caller(method: str, params: dict[str, Any], timeout_s: float, request_id: str | None) -> Any:
        calls.append((method, params, request_id))
        return {"id": "o1", "status": "filled"}

    ctx = LocalContext(flow_id="f", cycle=7, node_id="buy", caller=caller)
    out = run_node("trade_node", {"symbol": "btcusdt", "quantity": "0.01"}, {"input": {"signal": "BUY"}}, ctx)
    coid = client_order_id("f", 7, "buy")
    assert len(coid) == 36 and coid == client_order_id("f", 7, "buy") != client_order_id("f", 8, "buy")
    assert calls == [("execute.order", {"symbol": "BTCUSDT", "action": "buy", "quantity": "0.01",
                                         "order_type": "market", "time_in_force": "day", "client_order_id": coid},
                      coid)]
    assert out["output"]["client_order_id"] == coid


def test_trade_on_a_hold_signal_places_nothing() -> None:
    out = run_node("trade_node", {"symbol": "BTCUSDT", "quantity": "1"}, {"input": {"action": "HOLD"}},
                   LocalContext())
    assert out["output"]["status"] == "no_order"


class _Hook(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Any:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.statuses, _Hook.bodies = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_notification_retries_a_failing_webhook(hook: str) -> None:
    _Hook.statuses = [503, 500]
    out = run_node("notification_node", {"url": hook + "/hook", "retries": 3}, {"input": {"x": 1}},
                   LocalContext(flow_id="f", cycle=2))
    assert out["output"] == {"status_code": 200, "attempts": 3}
    assert _Hook.bodies[-1]["text"] == 'flow f cycle 2: {"x": 1}'


def test_notification_speaks_telegrams_send_message(hook: str) -> None:
    run_node("notification_node", {"url": hook + "/bot123:abc/sendMessage", "chat_id": 42, "template": "hi {cycle}"},
             {"input": 1}, LocalContext(cycle=3))
    assert _Hook.bodies == [{"chat_id": 42, "text": "hi 3"}]


def test_notification_gives_up_after_its_retries(hook: str) -> None:
    _Hook.statuses = [503] * 5
    with pytest.raises(TACoreError, match="after 2 attempts"):
        run_node("notification_node", {"url": hook, "retries": 1}, {"input": 1}, LocalContext())


def test_demo_actions_answer_as_the_demo_does() -> None:
    out = run_node("action_node", {"action": "calculate_trading_signal", "duration_ms": 0}, {}, LocalContext())
    assert out == {"output": {"signal": "BUY", "price": 100.0}}


def test_fail_action_fails_only_its_first_attempts() -> None:
    with pytest.raises(NodeFailed):
        run_node("action_node", {"action": "fail", "fail_attempts": 1}, {}, LocalContext(attempt=1))
    assert run_node("action_node", {"action": "fail", "fail_attempts": 1}, {"input": 5},
                    LocalContext(attempt=2)) == {"output": {"input": 5}}


def test_a_cancelled_sleep_stops_at_once() -> None:
    signal = _Signal()
    threading.Timer(0.05, signal.set, args=("preempt", "make room")).start()
    with pytest.raises(Cancelled, match="make room"):
        run_node("action_node", {"action": "sleep", "duration_ms": 30_000}, {}, LocalContext(signal=signal))


def test_invalid_config_names_each_field() -> None:
    with pytest.raises(InvalidParams) as info:
        run_node("binance_price_node", {"symbol": "", "interval": "7m"}, {}, LocalContext())
    assert {d["field"] for d in info.value.details} == {"config.symbol", "config.interval"}


class _Double(NodeConfig):
    factor: float = 2.0


def test_a_user_type_registers_with_the_decorator() -> None:
    @register_node("test_double_node")
    class Double(NodeBase):
        Config = _Double

        def execute(self, ctx: Any, config: _Double, inputs: dict[str, Any]) -> dict[str, Any]:
            return {"output": inputs["input"] * config.factor}

    assert node_type("test_double_node") is Double
    assert run_node("test_double_node", {"factor": 3}, {"input": 2}, LocalContext()) == {"output": 6.0}


def test_outputs_past_the_size_limit_fail_clearly() -> None:
    with pytest.raises(NodeFailed, match="over the 1048576-byte limit"):
        run_node("action_node", {"action": "noop", "output": "x" * (1 << 20)}, {}, LocalContext())
