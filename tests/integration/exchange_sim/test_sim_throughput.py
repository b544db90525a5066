"""The ingest benchmark needs >= 25,000 kline messages/s from the simulator to one client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from websockets.asyncio.client import connect

CODE = "import sys; from tacore.exchange_sim.server import main; sys.exit(main(sys.argv[1:]))"
INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
STREAMS = [f"sym{i:03d}usdt@kline_{iv}" for i in range(100) for iv in INTERVALS]


async def _count(ws_url: str, streams: list[str], counts: list[int], slot: int, seconds: float) -> None:
    async with connect(f"{ws_url}/stream", max_queue=None) as ws:
        for n, start in enumerate(range(0, len(streams), 200)):
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams[start : start + 200], "id": n}))
            await asyncio.sleep(0.21)  # stay under 5 messages a second
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), 2)
            counts[slot] += 1


async def test_simulator_pushes_over_25000_kline_messages_a_second_over_two_connections() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, "--update-interval-ms", "10"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ws_url = json.loads(proc.stdout.readline())["ws_url"]
        counts = [0, 0]
        tasks = [asyncio.create_task(_count(ws_url, STREAMS[k::2], counts, k, 4.0)) for k in range(2)]
        await asyncio.sleep(1.5)  # subscriptions in place
        before, t0 = sum(counts), time.monotonic()
        await asyncio.sleep(2.0)
        rate = (sum(counts) - before) / (time.monotonic() - t0)
        await asyncio.gather(*tasks)
    finally:
        proc.terminate()
        proc.wait(10)
    assert rate >= 25_000, f"{rate:.0f} msg/s"
