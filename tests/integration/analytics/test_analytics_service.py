"""evaluate.risk and analyze.stock through a real broker and a real data agent on a seeded chDB store, with
the LLM simulator as the AI endpoint: the design document's payloads, as a client sends them."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import Seeded, seed_daily_market

from clients import LazyPirateClient, RemoteError
from tacore.llm_sim import Fault, LLMSimulator
from tacore.store.klines import KlineStore
from tests.support.ports import free_port
from tests.support.processes import TACoreProcess, wait_until

LLM_KEY = "sk-test-" + uuid.uuid4().hex


@dataclass
class Service:
    client: LazyPirateClient
    seeded: Seeded
    llm: LLMSimulator
    agent: TACoreProcess

    def call(self, method: str, params: dict[str, Any], timeout_ms: int = 10_000) -> Any:
        return self.client.call(method, params, timeout_ms=timeout_ms)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("analytics-service")
    data_dir = workdir / "data"
    store = KlineStore(f"chdb://{data_dir.resolve()}/klines")
    store.open()
    seeded = Seeded(store)
    seed_daily_market(seeded, int(time.time() * 1000))
    store.close()  # chDB: one process per directory; the data agent opens it next
    broker = TACoreProcess(workdir / "broker", ["broker", "--no-request-log"])
    llm = LLMSimulator(api_key=LLM_KEY).start()
    agent = None
    client = None
    try:
        broker.start()
        broker.wait_healthy(workers=0)
        agent = TACoreProcess(workdir / "agent", ["data-agent"], ports={**broker.ports, "EVENTS_PORT": free_port()},
                              env={"DATA_DIR": str(data_dir), "DATA_AGENT_SYMBOLS": "[]",
                                   "EXCHANGE_WS_URL": f"ws://127.0.0.1:{free_port()}",
                                   "EXCHANGE_REST_URL": f"http://127.0.0.1:{free_port()}",
                                   "LLM_BASE_URL": llm.base_url, "LLM_API_KEY": LLM_KEY, "LLM_MODEL": "tacore-sim-1",
                                   "LLM_TIMEOUT_S": "6", "LLM_MAX_RETRIES": "2"}).start()

        def serving() -> bool:
            assert agent is not None and agent.proc is not None and agent.proc.poll() is None, agent.output()[-3000:]
            methods = broker.status()["methods"]
            return all(methods.get(m, {}).get("workers") for m in ("evaluate.risk", "analyze.stock", "kline.status"))

        wait_until(serving, 30, "the data agent to serve the analytics methods")
        client = LazyPirateClient(broker.frontend, timeout_ms=10_000, retries=0)
        yield Service(client, seeded, llm, agent)
    finally:
        if client is not None:
            client.close()
        if agent is not None:
            agent.stop()
        broker.stop()
        llm.stop()


def test_design_document_evaluate_risk_payload_answers_real_figures(service: Service) -> None:
    data = service.client.evaluate_risk({"AAPL": 100, "GOOGL": 50})
    assert data["status"] == "ok"
    positions = {p["symbol"]: p for p in data["positions"]}
    assert positions["AAPL"]["market_value"] == pytest.approx(100 * service.seeded.closes["AAPL"][-1])
    assert positions["GOOGL"]["market_value"] == pytest.approx(50 * service.seeded.closes["GOOGL"][-1])
    assert data["volatility"]["annualised"] > 0 and data["beta"]["benchmark"] == "SPY"
    assert {row["confidence"] for row in data["var"]} == {0.95, 0.99}
    assert data["lookback"]["candles_used"] > 200 and data["correlation"]["symbols"] == ["AAPL", "GOOGL"]


def test_risk_options_travel_through_the_client_helper(service: Service) -> None:
    data = service.client.evaluate_risk({"AAPL": "10.5", "BTCUSDT": "0.25", "NEWUSDT": 3}, benchmark="BTCUSDT",
                                        horizon=5, confidence_levels=[0.975], lookback_days=200)
    assert data["status"] == "partial" and data["insufficient_history"][0]["symbol"] == "NEWUSDT"
    assert data["var"][0]["confidence"] == 0.975 and data["var"][0]["horizon_bars"] == 5
    assert data["beta"]["benchmark"] == "BTCUSDT" and data["lookback"]["days"] == 200
    assert {p["symbol"]: p["quantity"] for p in data["positions"]}["AAPL"] == "10.5"


def test_design_document_technical_analysis_payload(service: Service) -> None:
    data = service.client.analyze_stock("AAPL", "technical")
    assert data["status"] == "ok" and data["candles"]["used"] == 300
    assert data["signal"]["action"] in ("buy", "hold", "sell") and -100 <= data["signal"]["score"] <= 100
    assert data["indicators"]["sma"]["200"] is not None and 0 <= data["indicators"]["rsi_14"] <= 100
    assert data["verdicts"]["trend"]["direction"] in ("up", "down", "sideways")


def test_ai_analysis_answers_from_the_llm_with_the_technical_summary(service: Service) -> None:
    data = service.client.analyze_stock("BTCUSDT", "ai")
    assert data["status"] == "ok" and data["fallback"] is False
    technical = data["technical"]
    assert data["ai"]["action"] == technical["signal"]["action"]  # the simulator reads the summary it was sent
    assert data["recommendation"]["source"] == "ai" and 0.5 <= data["ai"]["confidence"] <= 1
    assert data["llm"]["attempts"] == 1 and data["llm"]["model"] == "tacore-sim-1"
    last = service.llm.stats()["last_request"]
    assert last["authorization"] == "ok" and last["response_format"] == {"type": "json_object"}
    assert "Technical summary (JSON):" in last["messages"][1]["content"]


def test_ai_analysis_survives_a_rate_limit_and_falls_back_on_invalid_output(service: Service) -> None:
    service.llm.add_fault(Fault(kind="rate_limit", count=1, retry_after_s=0.2))
    data = service.client.analyze_stock("ETHUSDT", "ai")
    assert data["status"] == "ok" and data["llm"]["attempts"] == 2
    service.llm.add_fault(Fault(kind="invalid_json", count=2))
    data = service.client.analyze_stock("ETHUSDT", "ai")
    assert data["status"] == "fallback" and data["fallback"] is True and data["ai"] is None
    assert data["recommendation"] == {"action": data["technical"]["signal"]["action"], "confidence": None,
                                      "target_price": None, "source": "technical"}
    assert len(data["llm"]["invalid_replies"]) == 2 and "not JSON" in data["fallback_reason"]


def test_ai_analysis_answers_unavailable_when_the_endpoint_keeps_failing(service: Service) -> None:
    service.llm.add_fault(Fault(kind="unavailable", count=-1))
    try:
        with pytest.raises(RemoteError) as err:
            service.client.analyze_stock("BTCUSDT", "ai")
        assert err.value.code == "UNAVAILABLE" and "503" in err.value.message and "3 attempt" in err.value.message
    finally:
        service.llm.clear_faults()
    assert LLM_KEY not in service.agent.output()  # the key is never logged, not even in failures
    assert service.client.analyze_stock("BTCUSDT", "technical")["status"] == "ok"  # and the agent serves on


def test_unknown_analysis_type_and_bad_params_are_invalid_params_with_details(service: Service) -> None:
    with pytest.raises(RemoteError) as err:
        service.client.analyze_stock("AAPL", "astrology")
    assert err.value.code == "INVALID_PARAMS" and "technical, ai" in err.value.message
    assert err.value.details[0]["known"] == ["technical", "ai"]
    with pytest.raises(RemoteError) as err:
        service.call("analyze.stock", {"symbol": "AAPL", "interval": "2h", "limit": 0})
    fields = {d["field"] for d in err.value.details}
    assert err.value.code == "INVALID_PARAMS" and fields == {"interval", "limit"}
    with pytest.raises(RemoteError) as err:
        service.call("evaluate.risk", {"portfolio": {"AAPL": "lots", "bad symbol": 1}})
    assert err.value.code == "INVALID_PARAMS"
    assert any(d["field"] and d["field"].startswith("portfolio") for d in err.value.details)
    with pytest.raises(RemoteError) as err:
        service.call("evaluate.risk", {"portfolio": {"AAPL": 1}, "weights": {"AAPL": 1}})
    assert "not both" in json.dumps(err.value.details)


def test_analyses_of_a_symbol_without_history_say_what_is_missing(service: Service) -> None:
    data = service.client.analyze_stock("NEWUSDT", "technical")
    assert data["status"] == "insufficient_history" and data["signal"] is None
    assert data["candles"]["used"] == 12 and data["needed"] == 35 and "12 closed 1d candles" in data["message"]
    risk = service.client.evaluate_risk({"IPO": 5})
    assert risk["status"] == "insufficient_history" and risk["insufficient_history"][0]["symbol"] == "IPO"


def test_ai_calls_waiting_on_the_llm_never_hold_up_the_kline_methods(service: Service) -> None:
    status = service.call("broker.status", {})
    agents = [w for w in status["workers"] if w["kind"] == "data-agent" and w["state"] != "dead"]
    analysis = [w for w in agents if "analyze.stock" in w["methods"]]
    assert len(analysis) == 1 and "kline.status" not in analysis[0]["methods"]  # its own worker
    service.llm.add_fault(Fault(kind="slow", count=1, delay_s=3.0))
    result: dict[str, Any] = {}

    def slow_call() -> None:
        with LazyPirateClient(service.client.endpoint, timeout_ms=15_000, retries=0) as client:
            result["ai"] = client.call("analyze.stock", {"symbol": "BTCUSDT", "analysis_type": "ai"})

    thread = threading.Thread(target=slow_call)
    thread.start()
    wait_until(lambda: service.llm.stats()["faults_applied"].get("slow"), 5, "the ai call to reach the endpoint")
    service.call("kline.status", {})
    still_waiting = thread.is_alive()  # kline.status answered while the ai call still waited on the endpoint
    thread.join(15)
    assert still_waiting
    assert result["ai"]["status"] == "ok" and result["ai"]["llm"]["attempts"] == 1
