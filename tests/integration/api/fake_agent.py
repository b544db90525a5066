"""A stand-in data agent for the sidecar's forwarding tests: a real Worker serving the kline.* methods.

It joins the real broker like the real agent does (kind ``data-agent``), reports its (healthy) state to
the broker like the real agent does (``broker.report``), and answers with the seed's reply shapes from
an in-memory subscription set, so the tests prove the sidecar's forwarding, error mapping and auth
without depending on an exchange.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tacore.errors import InvalidParams
from tacore.health import disk_facts
from tacore.reporting import Facts, ReportLoop
from workers.registry import MethodRegistry
from workers.runtime import Worker

INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamParams(BaseModel):
    symbol: str
    interval: str


class SymbolsParams(BaseModel):
    symbols: list[str]


class HistoryParams(BaseModel):
    symbol: str
    interval: str
    start: int | None = None
    end: int | None = None
    limit: int = 500


class FakeAgent:
    def __init__(self, endpoint: str, heartbeat_interval_ms: int = 1000, frontend: str | None = None) -> None:
        self.streams: dict[tuple[str, str], float] = {}
        self.counters = {"klines_ingested": 0, "cache_hits": 0, "cache_misses": 0}
        registry = MethodRegistry()
        self._register(registry)
        self.worker = Worker(endpoint, registry, worker_id="fake-agent", kind="data-agent", credit=4,
                             heartbeat_interval_ms=heartbeat_interval_ms)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True, name="fake-agent")
        self.reports = None if frontend is None else ReportLoop(frontend, "data-agent/fake-agent", self.facts,
                                                                heartbeat_interval_ms / 1000.0)

    def facts(self) -> Facts:
        """What a healthy real agent reports (tacore.health reads these)."""
        return {"candle_store": {"kind": "chdb", "ok": True, "buffered_rows": 0, "dropped_rows": 0},
                "cache": {"kind": "memory", "ok": True}, "disk": disk_facts(Path(tempfile.gettempdir())),
                "feed": {"connections": 1, "connected": 1}}

    def start(self) -> FakeAgent:
        self.thread.start()
        if self.reports is not None:
            self.reports.start()
        return self

    def close(self) -> None:
        if self.reports is not None:
            self.reports.stop()
        self.stop.set()
        self.thread.join(5)

    def symbols(self) -> list[str]:
        return sorted({s for s, _ in self.streams})

    def _register(self, registry: MethodRegistry) -> None:
        agent = self

        @registry.method("kline.status", idempotent=True)
        def status(params: Empty) -> dict[str, Any]:
            agent.counters["klines_ingested"] += 5
            agent.counters["cache_hits"] += 3
            agent.counters["cache_misses"] += 1
            return {"status": "ok", "connection_count": 1 if agent.streams else 0, "symbols": agent.symbols(),
                    "stream_count": len(agent.streams), **agent.counters,
                    "cache": {"kind": "memory", "hits": agent.counters["cache_hits"],
                              "misses": agent.counters["cache_misses"]}}

        @registry.method("kline.connections", idempotent=True)
        def connections(params: Empty) -> dict[str, Any]:
            # the real agent multiplexes streams over a few connections; one carries them all here
            streams = sorted(f"{s.lower()}@kline_{i}" for s, i in agent.streams)
            last = max(agent.streams.values(), default=None)
            items = [{"id": 1, "url": "ws://fake", "state": "connected", "streams": streams,
                      "stream_count": len(streams), "subscribed_count": len(streams), "connected_since": last,
                      "last_message": last, "messages_received": 7 * len(streams), "reconnects": 0}] if streams else []
            return {"connection_count": len(items), "count": len(items), "connections": items}

        @registry.method("kline.symbols", idempotent=True)
        def symbols(params: Empty) -> dict[str, Any]:
            names = agent.symbols()
            return {"symbols": names, "count": len(names)}

        @registry.method("kline.add_stream", idempotent=True)
        def add_stream(params: StreamParams) -> dict[str, Any]:
            if params.interval not in INTERVALS:
                raise InvalidParams("unsupported interval",
                                    details=[{"field": "interval", "message": f"one of {', '.join(INTERVALS)}"}])
            agent.streams[(params.symbol.upper(), params.interval)] = time.time()
            return {"status": "ok", "message": f"stream {params.symbol.upper()}@{params.interval} added"}

        @registry.method("kline.remove_stream", idempotent=True)
        def remove_stream(params: StreamParams) -> dict[str, Any]:
            agent.streams.pop((params.symbol.upper(), params.interval), None)
            return {"status": "ok", "message": f"stream {params.symbol.upper()}@{params.interval} removed"}

        @registry.method("kline.history", idempotent=True)
        def history(params: HistoryParams) -> dict[str, Any]:
            return {"symbol": params.symbol, "interval": params.interval, "count": 0, "candles": []}

        @registry.method("get.market_data", idempotent=True)
        def market_data(params: SymbolsParams) -> dict[str, Any]:  # nothing is stored here: every symbol no_data
            entries = {s: {"symbol": s, "status": "no_data"} for s in params.symbols}
            return {"symbols": entries, "count": len(entries), "no_data": list(entries)}

        @registry.method("kline.add_symbols", idempotent=True)
        def add_symbols(params: SymbolsParams) -> dict[str, Any]:
            results = []
            for symbol in params.symbols:
                for interval in INTERVALS:
                    agent.streams[(symbol.upper(), interval)] = time.time()
                results.append({"symbol": symbol.upper(), "status": "ok", "added": len(INTERVALS)})
            return {"status": "ok", "results": results,
                    "current_status": {"connection_count": len(agent.streams), "symbols": agent.symbols()},
                    "summary": {"requested": len(params.symbols), "succeeded": len(results), "failed": 0}}
