"""Fixtures: a ``tacore serve`` with its order process and a DATA_READY feed the test drives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from order_support import CandleFeed, trading_config

from tests.support.processes import TACoreProcess


@pytest.fixture
def order_service(tacore_factory: Callable[..., TACoreProcess],
                  tmp_path: Path) -> Iterator[Callable[..., tuple[TACoreProcess, CandleFeed]]]:
    """``start(**env)``: the service (no data agent, no sidecar) and a feed on its EVENTS_PORT."""
    feeds: list[CandleFeed] = []

    def start(**env: str) -> tuple[TACoreProcess, CandleFeed]:
        config = trading_config(tmp_path / f"trading{len(feeds)}.yaml")
        tacore = tacore_factory(TRADING_CONFIG=str(config), **env)
        feed = CandleFeed(tacore.ports["EVENTS_PORT"])
        feeds.append(feed)
        tacore.wait_healthy(workers=2, timeout=60)
        return tacore, feed

    yield start
    for feed in feeds:
        feed.close()
