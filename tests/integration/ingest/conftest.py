"""Fixtures: the exchange simulator (fast clock), a real broker, and data agents as real processes.

Everything binds free loopback ports and is torn down after the test, even when it fails.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_harness import CLOCK_SPEED, UPDATE_INTERVAL_MS, Agent, Broker

from tacore.exchange_sim.config import SimConfig
from tacore.exchange_sim.server import ExchangeSimulator


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("broker")).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., ExchangeSimulator]]:
    sims: list[ExchangeSimulator] = []

    def start(**overrides: Any) -> ExchangeSimulator:
        config = SimConfig(**{"clock_speed": CLOCK_SPEED, "update_interval_ms": UPDATE_INTERVAL_MS, **overrides})
        sim = ExchangeSimulator(config).start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., ExchangeSimulator]) -> ExchangeSimulator:
    return sim_factory()


@pytest.fixture
def agent_factory(broker: Broker, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """``start(sim, symbols=[...], data_dir=None, **env)``: a data agent process; stopped after the test."""
    agents: list[Agent] = []

    def start(sim: ExchangeSimulator, symbols: list[str] | None = None, data_dir: Path | None = None,
              **env: str) -> Agent:
        workdir = tmp_path / f"agent{len(agents)}"
        full_env = {"DATA_AGENT_SYMBOLS": json.dumps(symbols or []),
                    "DATA_DIR": str(data_dir or workdir / "data"), **env}
        agent = Agent(broker, sim, workdir, full_env)
        agents.append(agent)
        try:
            return agent.start()
        except BaseException:
            sys.stderr.write(f"--- data agent output ---\n{agent.process.output()[-4000:]}\n")
            raise

    yield start
    for agent in agents:
        agent.close()
