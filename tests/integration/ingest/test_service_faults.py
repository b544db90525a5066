"""Faults of the whole service (``tacore serve`` with its data agent, sidecar and a private Redis): one set of
dependency states everywhere, all-or-nothing subscriptions on a full disk, a read-only DATA_DIR that is one
clear error and a supervisor that backs off.

DATA_DIR is a small tmpfs mounted for each test (``tests.support.filesystems``; needs root), the exchange
the simulator, Redis a ``redis-server`` of the test's own on a free port (so it can be stopped).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ingest_harness import FAST_AGENT_ENV

from clients import LazyPirateClient
from tacore.exchange_sim.server import ExchangeSimulator
from tacore.health import DEPENDENCIES
from tests.support.filesystems import fill, small_filesystem
from tests.support.ports import free_port
from tests.support.processes import TACoreProcess, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class Redis:
    """A redis-server of the test's own, on a free port, without persistence; stop/start at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    redis = Redis().start()
    yield redis
    redis.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "data", 48) as mount:
        yield mount


def _serve(tacore_factory: Callable[..., TACoreProcess], sim: ExchangeSimulator, data_dir: Path,
           **env: str) -> TACoreProcess:
    return tacore_factory(["serve"], DATA_DIR=str(data_dir), DATA_DIR_MIN_FREE_MB="1", WORKER_COUNT="1",
                          EXCHANGE_WS_URL=sim.ws_url, EXCHANGE_REST_URL=sim.rest_url,
                          DATA_AGENT_SYMBOLS=json.dumps(["BTCUSDT"]), **FAST_AGENT_ENV, **env)


class Views:
    """The three places that report the dependency states: /health, health.check, kline.status."""

    def __init__(self, tacore: TACoreProcess) -> None:
        self.api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"
        self.client = LazyPirateClient(tacore.frontend, timeout_ms=5000, retries=1)

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.api}/health", timeout=5)

    def all(self) -> dict[str, dict[str, Any]]:
        health = self.health().json()["components"]
        checked = self.client.call("health.check", {"detailed": True})["dependencies"]
        kline = self.client.call("kline.status")["dependencies"]
        return {"/health": {k: health[k] for k in DEPENDENCIES}, "health.check": checked, "kline.status": kline}

    def agree(self, name: str, status: str) -> dict[str, dict[str, Any]] | None:
        """All three, once they show ``name`` as ``status`` and agree on every state (None until then)."""
        views = self.all()
        statuses = [{k: v["status"] for k, v in view.items()} for view in views.values()]
        if all(s == statuses[0] for s in statuses) and statuses[0][name] == status:
            return views
        return None

    def close(self) -> None:
        self.client.close()


@pytest.mark.timeout(180)
def test_health_check_kline_status_and_health_report_the_same_states_through_outages(
        tacore_factory: Callable[..., TACoreProcess], sim: ExchangeSimulator, redis_server: Redis,
        data_dir: Path) -> None:
    tacore = _serve(tacore_factory, sim, data_dir, REDIS_URL=redis_server.url)
    views = Views(tacore)
    try:
        wait_until(lambda: views.health().status_code == 200 and views.health().json()["status"] == "healthy",
                   60, "every dependency up")
        wait_until(lambda: views.agree("cache", "up"), 10, "the three views agreeing, all up")

        redis_server.stop()
        seen = wait_until(lambda: views.agree("cache", "down"), 20, "the three views agreeing that Redis is down")
        reasons = {view: states["cache"]["reason"] for view, states in seen.items()}
        assert len(set(reasons.values())) == 1 and "redis" in next(iter(reasons.values())), reasons
        health = views.health()
        assert health.status_code == 200 and health.json()["status"] == "degraded"  # serving goes on
        assert views.client.call("kline.status")["status"] == "degraded"

        redis_server.start()
        wait_until(lambda: views.agree("cache", "up"), 20, "Redis back in all three views")

        filler = fill(data_dir)
        seen = wait_until(lambda: views.agree("disk", "down"), 20, "a full DATA_DIR in all three views")
        assert all("full" in states["disk"]["reason"] for states in seen.values()), seen
        assert views.client.call("kline.status")["status"] == "degraded"
        assert views.health().status_code == 200
        filler.unlink()
        wait_until(lambda: views.agree("disk", "up"), 20, "the disk back in all three views")
    finally:
        views.close()


@pytest.mark.timeout(180)
def test_add_symbols_on_a_full_disk_is_retryable_unavailable_and_changes_nothing(
        tacore_factory: Callable[..., TACoreProcess], sim: ExchangeSimulator, data_dir: Path) -> None:
    tacore = _serve(tacore_factory, sim, data_dir)
    subscriptions = data_dir / "data-agent" / "subscriptions.json"
    with LazyPirateClient(tacore.frontend, timeout_ms=20_000, retries=0) as client:
        wait_until(lambda: client.call("kline.status")["flowing_streams"] == 7, 60, "BTCUSDT streaming")
        filler = fill(data_dir)
        for method, params in (("kline.add_symbols", {"symbols": ["ETHUSDT"]}),
                               ("kline.add_stream", {"symbol": "SOLUSDT", "interval": "1m"}),
                               ("kline.remove_stream", {"symbol": "BTCUSDT", "interval": "1h"})):
            reply = client.request(method, params)
            assert reply["status"] == "error", (method, reply)
            assert reply["error"]["code"] == "UNAVAILABLE" and reply["error"]["retryable"] is True, reply
            message = reply["error"]["message"]
            assert str(subscriptions) in message and "nothing was changed" in message, message
        assert client.call("kline.symbols")["streams"] == {"BTCUSDT": ["1m", "5m", "15m", "30m", "1h", "4h", "1d"]}
        assert sorted(p[0] for p in orjson.loads(subscriptions.read_bytes())["streams"]) == ["BTCUSDT"] * 7

        filler.unlink()  # the retry succeeds once there is room, and is saved before it streams
        assert client.call("kline.add_symbols", {"symbols": ["ETHUSDT"]})["summary"]["streams_added"] == 7
        assert {p[0] for p in orjson.loads(subscriptions.read_bytes())["streams"]} == {"BTCUSDT", "ETHUSDT"}
        agent = next(w for w in tacore.status()["workers"] if w["kind"] == "data-agent" and w["state"] != "dead")
        os.kill(agent["pid"], signal.SIGKILL)  # the supervisor restarts it from the saved set
        wait_until(lambda: set(client.call("kline.symbols")["symbols"]) == {"BTCUSDT", "ETHUSDT"}, 60,
                   "both symbols back after the restart")


@pytest.mark.timeout(120)
def test_a_read_only_data_dir_is_one_clear_error_and_the_supervisor_backs_off(
        tacore_factory: Callable[..., TACoreProcess], sim: ExchangeSimulator, tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "ro", 8, read_only=True) as read_only:
        tacore = _serve(tacore_factory, sim, read_only, DATABASE_PATH=str(tmp_path / "log" / "log.db"))
        api = f"http://127.0.0.1:{tacore.ports['API_PORT']}"

        def agent_state() -> dict[str, Any] | None:
            reply = httpx.get(f"{api}/health", timeout=5)
            state: dict[str, Any] = reply.json()["components"]["data_agent"]
            reason = state["reason"]
            failing = "last words" in reason and "in a row" in reason and "backing off" in reason
            return state if reply.status_code == 200 and failing else None

        state = wait_until(agent_state, 60, "the data agent reported failing and backed off, with its reason")
        assert state["status"] == "down"
        assert f"DATA_DIR {read_only} is not usable: Read-only file system" in state["reason"]
        wait_until(lambda: tacore.output().count("data agent cannot start") >= 3, 30, "a few attempts")
        time.sleep(12)
        out = tacore.output()
        starts = out.count("data agent cannot start")
        assert starts <= 7, f"{starts} starts in about 20 s: no backoff"
        assert f"DATA_DIR {read_only} is not usable: Read-only file system (EROFS)" in out
        assert "Traceback" not in out and "buffering until it is back" not in out
        assert "times in a row" in out and "restarting in" in out
        health = httpx.get(f"{api}/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "degraded"  # health.check still served
