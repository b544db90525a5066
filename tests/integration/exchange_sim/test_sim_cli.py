"""``tacore exchange-sim`` as a process: announces its URLs, serves, exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from sim_helpers import recv_json
from websockets.asyncio.client import connect

from tacore.exchange_sim import ExchangeSimulator, SimConfig, SimulatorError

CODE = "import sys; from tacore.exchange_sim.server import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture
def cli() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CODE,
            "--clock-speed",
            "600",
            "--update-interval-ms",
            "50",
            "--symbols",
            "BTCUSDT,ETHBTC",
            "--alpaca-key-id",
            "CLIKEY",
            "--alpaca-secret-key",
            "CLISECRET",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_prints_urls_serves_and_exits_zero_on_signal(
    cli: subprocess.Popen[str], signum: signal.Signals
) -> None:
    assert cli.stdout is not None
    line = json.loads(cli.stdout.readline())
    assert line["ws_url"].startswith("ws://127.0.0.1:") and line["rest_url"].startswith("http://127.0.0.1:")
    assert line["ws_url"].count("/") == 2 and line["rest_url"].count("/") == 2  # base URLs, no path
    async with connect(f"{line['ws_url']}/ws/btcusdt@kline_1m") as ws:
        assert (await recv_json(ws, timeout=5))["s"] == "BTCUSDT"
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{line['rest_url']}/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1m"})
    assert reply.json() == {"code": -1121, "msg": "Invalid symbol."}  # not in --symbols
    assert line["alpaca_rest_url"].startswith("http://127.0.0.1:") and line["alpaca_rest_url"].count("/") == 2
    assert line["alpaca_stream_url"].startswith("ws://127.0.0.1:") and line["alpaca_stream_url"].count("/") == 2
    async with httpx.AsyncClient() as http:
        bars = await http.get(f"{line['alpaca_rest_url']}/v2/stocks/bars", params={"symbols": "AAPL",
                              "timeframe": "1Day"}, headers={"APCA-API-KEY-ID": "CLIKEY",
                                                             "APCA-API-SECRET-KEY": "CLISECRET"}, timeout=20)
    assert bars.status_code == 200 and "bars" in bars.json()
    cli.send_signal(signum)
    assert cli.wait(10) == 0


def test_start_fails_loudly_when_a_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SimulatorError):
            ExchangeSimulator(SimConfig(rest_port=port)).start()
        with pytest.raises(SimulatorError):
            ExchangeSimulator(SimConfig(ws_port=port)).start()
        with pytest.raises(SimulatorError):
            ExchangeSimulator(SimConfig(alpaca_rest_port=port)).start()
        with pytest.raises(SimulatorError):
            ExchangeSimulator(SimConfig(alpaca_ws_port=port)).start()
