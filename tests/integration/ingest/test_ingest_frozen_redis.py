"""A frozen Redis (a private redis-server, SIGSTOPped) costs a data-agent call at most its deadline, and the
health states say the cache is down while it stays frozen (and up once it thaws).

Before, each symbol's cache read waited out the socket timeout in turn: a ``get.market_data`` of many
symbols with ``timeout_ms`` 5000 ran for minutes, and every ``kline.*`` call behind it timed out; and
``kline.status`` said ``ok`` throughout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_harness import Agent

from tacore.exchange_sim.server import ExchangeSimulator
from tests.support.ports import free_port
from tests.support.processes import wait_until


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of this test's own on a free port (never the shared one on 6379)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        wait_until(lambda: redis.Redis(port=port, socket_timeout=0.2).ping(), 5, "the private redis-server")
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(5)


def test_a_frozen_redis_costs_a_market_data_call_at_most_its_deadline(
    agent_factory: Callable[..., Agent], sim: ExchangeSimulator,
    private_redis: tuple[subprocess.Popen[bytes], str]
) -> None:
    redis_proc, url = private_redis
    agent = agent_factory(sim, symbols=["BTCUSDT", "ETHUSDT"], REDIS_URL=url)
    agent.wait_flowing(14)
    symbols = ["BTCUSDT", "ETHUSDT", *[f"COIN{i}USDT" for i in range(30)]]
    assert agent.request("get.market_data", {"symbols": symbols})["data"]["symbols"]["BTCUSDT"]["source"] == "cache"
    os.kill(redis_proc.pid, signal.SIGSTOP)
    started = time.monotonic()
    reply = agent.client.request("get.market_data", {"symbols": symbols}, deadline_ms=1500)
    took = time.monotonic() - started
    assert took < 1.5 + 0.5, f"answered after {took:.1f} s, deadline 1.5 s"
    if reply["status"] == "success":  # the store answered once the cache was given up on
        assert reply["data"]["symbols"]["BTCUSDT"]["source"] == "store"
    else:
        assert reply["error"]["code"] == "TIMEOUT"
    started = time.monotonic()
    status = agent.request("kline.status")  # the agent is free again: its next call is not stuck behind
    assert status["status"] == "success" and time.monotonic() - started < 1.0


def test_a_frozen_redis_is_the_cache_down_in_kline_status_until_it_thaws(
    agent_factory: Callable[..., Agent], sim: ExchangeSimulator,
    private_redis: tuple[subprocess.Popen[bytes], str]
) -> None:
    redis_proc, url = private_redis
    agent = agent_factory(sim, symbols=["BTCUSDT"], REDIS_URL=url)
    agent.wait_flowing(7)

    def cache(status: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            started = time.monotonic()
            reply = agent.status()
            assert time.monotonic() - started < 2.0, "kline.status waited on the frozen Redis"
            return reply if reply["dependencies"]["cache"]["status"] == status else None
        return check

    wait_until(cache("up"), 20, "the cache up")
    os.kill(redis_proc.pid, signal.SIGSTOP)
    frozen = wait_until(cache("down"), 20, "the frozen Redis reported as the cache down", interval=0.2)
    assert frozen["status"] == "degraded"
    assert "redis" in frozen["dependencies"]["cache"]["reason"].lower(), frozen["dependencies"]["cache"]
    assert frozen["dependencies"]["candle_store"]["status"] == "up"  # prices still flow from the store
    os.kill(redis_proc.pid, signal.SIGCONT)
    thawed = wait_until(cache("up"), 30, "Redis back once it thaws", interval=0.2)
    assert thawed["status"] == "ok"
