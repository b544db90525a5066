"""scan.market through a real ``tacore serve`` (broker, workers, data agent on a seeded chDB directory)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import LazyPirateClient, RemoteError
from tests.support.ports import free_port
from tests.support.processes import TACoreProcess, wait_until

HERE = Path(__file__).resolve().parent


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TACoreProcess]:
    """A broker and a data agent (real processes) whose store was seeded, by another process, with candles
    ending now; yields the broker."""
    data_dir = tmp_path / "data"
    now = int(time.time() * 1000)
    seeded = subprocess.run([sys.executable, str(HERE / "scan_data.py"), f"chdb://{data_dir}/klines", str(now)],
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    broker = TACoreProcess(tmp_path / "broker", ["broker", "--no-request-log"])
    dead = f"127.0.0.1:{free_port()}"  # no symbols are subscribed: the exchange is never called
    agent = TACoreProcess(tmp_path / "agent", ["data-agent"], ports=broker.ports,
                          env={"DATA_DIR": str(data_dir), "EXCHANGE_WS_URL": f"ws://{dead}",
                               "EXCHANGE_REST_URL": f"http://{dead}"})
    try:
        broker.start().wait_healthy(workers=0)
        agent.start()

        def agent_serves_scans() -> bool:
            assert agent.proc is not None and agent.proc.poll() is None, agent.output()[-3000:]
            return bool(broker.status()["methods"].get("scan.market", {}).get("workers"))

        wait_until(agent_serves_scans, 60, "the data agent to serve scan.market")
        yield broker
    finally:
        agent.stop()
        broker.stop()


def test_design_document_payload_through_broker_and_data_agent(service: TACoreProcess) -> None:
    with LazyPirateClient(service.frontend, timeout_ms=20_000, retries=0) as client:
        reply: dict[str, Any] = client.call("scan.market", {"market": "US", "criteria": {"min_volume": 1000000,
                                                                                           "price_range": [10, 500]}})
        assert [r["symbol"] for r in reply["results"]] == ["AAPL", "ZZZZ"]
        assert [(f["source"], f["dropped"]) for f in reply["filters"]] == [("criteria.min_volume", 1),
                                                                            ("criteria.price_range", 1)]
        assert reply["market"] == "US" and reply["scanned"] == 4 and reply["candles"]["1m"]["candles"] == 1560

        # the client helper: the short form and a general chain together, sorted and paged
        chain = client.scan_market("CRYPTO", {"min_volume": 100_000}, filters=[
            {"field": "rsi", "op": "greater", "value": 50}], sort_by="price", limit=1)
        # AAA (RSI 100) and CCC (its 1,000 minutes of the day trade 1e9) match; AAA is the dearer
        assert [r["symbol"] for r in chain["results"]] == ["AAAUSDT"] and chain["matched"] == 2

        # bad criteria: INVALID_PARAMS pointing into the chain, and the agent keeps serving
        with pytest.raises(RemoteError) as caught:
            client.scan_market("CRYPTO", filters=[{"field": "price", "op": "greater", "value": 1},
                                                  {"field": "rsi", "op": "in_range", "value": [70]}])
        assert caught.value.code == "INVALID_PARAMS"
        assert [d["field"] for d in caught.value.details] == ["criteria.filters.1.value"]
        with pytest.raises(RemoteError) as unknown:
            client.scan_market("FX")
        assert unknown.value.code == "INVALID_PARAMS" and unknown.value.details[0]["known"] == ["CRYPTO", "US"]
        assert client.scan_market("US", limit=2)["count"] == 2
