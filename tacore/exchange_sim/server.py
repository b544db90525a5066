"""Wiring: the WS server, the feed and the REST/control app in one asyncio loop; CLI and test handle.

``ExchangeSimulator`` runs that loop in a background thread so synchronous and asynchronous tests
alike can start one on free ports, read ``ws_url`` / ``rest_url``, and always stop it.
``main(argv)`` is ``tacore exchange-sim``: it prints one JSON line with the URLs once listening and
runs until SIGTERM or SIGINT, then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.server import Server as WsListener
from websockets.asyncio.server import serve

from tacore.exchange_sim.alpaca.control import AlpacaControlApi
from tacore.exchange_sim.alpaca.feed import AlpacaMinuteFeed
from tacore.exchange_sim.alpaca.hub import AlpacaHub
from tacore.exchange_sim.alpaca.rest import AlpacaRestApi
from tacore.exchange_sim.alpaca.stream import AlpacaStreamServer
from tacore.exchange_sim.config import SimConfig
from tacore.exchange_sim.control import ControlApi
from tacore.exchange_sim.feed import Feed
from tacore.exchange_sim.hub import Hub
from tacore.exchange_sim.rest import RestApi
from tacore.exchange_sim.spot.api import SpotApi
from tacore.exchange_sim.spot.control import SpotControlApi
from tacore.exchange_sim.spot.hub import SpotHub
from tacore.exchange_sim.streams import SimConnection, WsServer

log = logging.getLogger(__name__)


class SimulatorError(RuntimeError):
    """The simulator could not start (port in use, bad settings) or died."""


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class ExchangeSimulator:
    """A running Binance-compatible exchange (and Alpaca market-data API) on loopback, in a background thread.

    >>> with ExchangeSimulator(SimConfig(clock_speed=100)) as sim:
    ...     ws_base, rest_base = sim.ws_url, sim.rest_url
    """

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        base = config or SimConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.hub = Hub(self.config)
        self.ws = WsServer(self.hub)
        self.feed = Feed(self.hub, self.ws.abort)
        self.spot = SpotHub(self.hub)
        self.alpaca: AlpacaHub | None = AlpacaHub(self.config, self.hub.clock) if self.config.alpaca else None
        self.alpaca_stream = AlpacaStreamServer(self.alpaca) if self.alpaca is not None else None
        # fixed ports are known before start (a client can be configured first); 0 = chosen at start
        self.ws_port = self.config.ws_port
        self.rest_port = self.config.rest_port
        self.alpaca_rest_port = self.config.alpaca_rest_port
        self.alpaca_ws_port = self.config.alpaca_ws_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL, no path (clients append ``/ws`` or ``/stream``)."""
        return f"ws://{self.config.host}:{self.ws_port}"

    @property
    def rest_url(self) -> str:
        """Base REST URL, no path (clients append ``/api/v3/klines``)."""
        return f"http://{self.config.host}:{self.rest_port}"

    @property
    def alpaca_rest_url(self) -> str:
        """Alpaca data API base URL, no path (clients append ``/v2/stocks/bars``); empty when disabled."""
        return f"http://{self.config.host}:{self.alpaca_rest_port}" if self.alpaca is not None else ""

    @property
    def alpaca_stream_url(self) -> str:
        """Alpaca stream base URL, no path (clients append ``/v2/iex``, ``/v2/sip``); empty when disabled."""
        return f"ws://{self.config.host}:{self.alpaca_ws_port}" if self.alpaca is not None else ""

    def stats(self) -> dict[str, Any]:
        """The same figures as ``GET /_sim/stats`` (read from the simulator thread)."""
        stats: dict[str, Any] = self.call(self.hub.stats)
        return stats

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` inside the simulator's loop and return its result."""
        if self._loop is None:
            raise SimulatorError("simulator is not running")

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> ExchangeSimulator:
        """Start listening; returns once both ports accept connections."""
        if self._thread is not None:
            raise SimulatorError("already started")
        self.hub.clock.restart()  # the simulated clock starts with the simulator, not when it was built
        self._thread = threading.Thread(target=self._run_thread, name="exchange-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SimulatorError("exchange simulator did not start in time")
        if self._error is not None:
            raise SimulatorError(f"exchange simulator failed to start: {self._error!r}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and both listeners; idempotent."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        """Whether the simulator thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ExchangeSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start() or logged; the thread must not die silently
            self._error = exc
            if self._ready.is_set():  # before that, start() raises it
                log.exception("exchange simulator stopped with an error")
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        cfg = self.config
        self._stop = asyncio.Event()
        rest_sock = _bind(cfg.host, cfg.rest_port)  # fails fast (and first) on a taken port
        alpaca_sock: socket.socket | None = None
        try:
            if self.alpaca is not None:
                alpaca_sock = _bind(cfg.host, cfg.alpaca_rest_port)
        except BaseException:
            rest_sock.close()
            raise
        try:
            ws_listener = await serve(
                self.ws.handler,
                cfg.host,
                cfg.ws_port,
                process_request=self.ws.process_request,
                create_connection=SimConnection,
                compression=None,  # the feed writes raw text frames
                ping_interval=None,  # Binance's own ping cadence is in streams.py
                ping_timeout=None,
                close_timeout=1,
                max_queue=64,
            )
        except BaseException:
            rest_sock.close()
            if alpaca_sock is not None:
                alpaca_sock.close()
            raise
        routes = [*RestApi(self.hub).routes(), *SpotApi(self.spot).routes(),
                  *ControlApi(self.hub, self.ws, self.alpaca, self.spot).routes(), *SpotControlApi(self.spot).routes()]
        servers: list[tuple[uvicorn.Server, socket.socket]] = []
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self.feed.run()), asyncio.create_task(self.spot.run())]
        alpaca_listener: WsListener | None = None
        serving: list[asyncio.Task[Any]] = []
        try:
            if self.alpaca is not None and self.alpaca_stream is not None and alpaca_sock is not None:
                minute_feed = AlpacaMinuteFeed(self.alpaca, self.alpaca_stream)
                routes += AlpacaControlApi(self.alpaca, self.alpaca_stream, minute_feed).routes()
                alpaca_listener = await serve(self.alpaca_stream.handler, cfg.host, cfg.alpaca_ws_port,
                                              process_request=self.alpaca_stream.process_request,
                                              close_timeout=1, max_queue=64)
                alpaca_app = Starlette(routes=AlpacaRestApi(self.alpaca).routes())
                # the Date header comes from the simulated clock, so uvicorn must not add its own
                servers.append((_uvicorn(alpaca_app, date_header=False), alpaca_sock))
                tasks.append(asyncio.create_task(minute_feed.run()))
            servers.insert(0, (_uvicorn(Starlette(routes=routes)), rest_sock))
            serving = [asyncio.create_task(uv.serve(sockets=[sock])) for uv, sock in servers]
            for _ in range(500):
                if all(uv.started for uv, _ in servers) or any(t.done() for t in serving):
                    break
                await asyncio.sleep(0.01)
            if not all(uv.started for uv, _ in servers):
                raise SimulatorError("REST server did not start")
            self.ws_port = ws_listener.sockets[0].getsockname()[1]
            self.rest_port = rest_sock.getsockname()[1]
            if alpaca_listener is not None and alpaca_sock is not None:
                self.alpaca_ws_port = next(iter(alpaca_listener.sockets)).getsockname()[1]
                self.alpaca_rest_port = alpaca_sock.getsockname()[1]
            self._ready.set()
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await self._close_ws(ws_listener)
            if alpaca_listener is not None:
                alpaca_listener.close(close_connections=True)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(alpaca_listener.wait_closed(), 5)
            for uv, _ in servers:
                uv.should_exit = True
            for task in [*serving, *tasks]:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, 5)
            rest_sock.close()
            if alpaca_sock is not None:
                alpaca_sock.close()

    async def _close_ws(self, listener: WsListener) -> None:
        for client in list(self.hub.clients.values()):
            if client.is_half_open():
                self.ws.abort(client)
        listener.close(close_connections=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(listener.wait_closed(), 5)


_DEFAULTS = SimConfig()


def _uvicorn(app: Starlette, *, date_header: bool = True) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                         timeout_graceful_shutdown=2, date_header=date_header))


# CLI ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Flags of ``tacore exchange-sim``."""
    p = argparse.ArgumentParser(
        prog="tacore exchange-sim",
        description="Binance-compatible exchange and Alpaca market-data API simulator (loopback only)."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ws-port", type=int, default=0, help="0 = a free port")
    p.add_argument("--rest-port", type=int, default=0, help="0 = a free port")
    p.add_argument("--clock-speed", type=float, default=1.0, help="simulated time per real time")
    p.add_argument("--update-interval-ms", type=float, default=2000.0)
    p.add_argument("--ping-interval-s", type=float, default=20.0)
    p.add_argument("--pong-timeout-s", type=float, default=60.0)
    p.add_argument("--max-connection-age-s", type=float, default=24 * 3600.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--symbols", default="", help="comma-separated whitelist (default: any well-formed symbol)")
    p.add_argument("--start-time-ms", type=int, default=None, help="simulated start time (default: now)")
    p.add_argument("--rest-weight-per-min", type=int, default=6000, help="REST weight per minute before HTTP 429")
    p.add_argument("--log-level", default="WARNING")
    alpaca = p.add_argument_group("Alpaca market-data API v2 (US equities)")
    alpaca.add_argument("--no-alpaca", action="store_true", help="serve Binance only")
    alpaca.add_argument("--alpaca-rest-port", type=int, default=0, help="0 = a free port")
    alpaca.add_argument("--alpaca-ws-port", type=int, default=0, help="0 = a free port")
    alpaca.add_argument("--alpaca-key-id", default=_DEFAULTS.alpaca_key_id)
    alpaca.add_argument("--alpaca-secret-key", default=_DEFAULTS.alpaca_secret_key)
    alpaca.add_argument("--alpaca-symbols", default="", help="comma-separated tickers (default: the US universe)")
    alpaca.add_argument("--alpaca-iex-only", action="store_true", help="the key pair has no real-time SIP plan")
    alpaca.add_argument("--alpaca-rate-limit", type=int, default=200, help="REST requests per minute")
    spot = p.add_argument_group("Binance spot trading API")
    spot.add_argument("--spot-api-key", default=_DEFAULTS.spot_api_key, help="the default account's API key")
    spot.add_argument("--spot-api-secret", default=_DEFAULTS.spot_api_secret, help="its secret key")
    spot.add_argument("--spot-balances", default="", help="ASSET=AMOUNT,... the default account starts with "
                                                          "(default: USDT=100000,BTC=1,ETH=10,BNB=10)")
    spot.add_argument("--spot-weight-limit", type=int, default=_DEFAULTS.spot_weight_limit,
                      help="request weight per minute before HTTP 429")
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """A SimConfig from parsed CLI flags."""
    symbols = frozenset(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    tickers = frozenset(s.strip().upper() for s in args.alpaca_symbols.split(",") if s.strip())
    balances = _DEFAULTS.spot_balances
    if args.spot_balances.strip():
        pairs = [item.split("=", 1) for item in args.spot_balances.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("--spot-balances takes ASSET=AMOUNT,...")
        balances = tuple((asset.strip().upper(), amount.strip()) for asset, amount in pairs)
    return SimConfig(
        host=args.host,
        ws_port=args.ws_port,
        rest_port=args.rest_port,
        clock_speed=args.clock_speed,
        update_interval_ms=args.update_interval_ms,
        ping_interval_s=args.ping_interval_s,
        pong_timeout_s=args.pong_timeout_s,
        max_connection_age_s=args.max_connection_age_s,
        seed=args.seed,
        rest_weight_per_min=args.rest_weight_per_min,
        symbols=symbols or None,
        start_time_ms=args.start_time_ms,
        alpaca=not args.no_alpaca,
        alpaca_rest_port=args.alpaca_rest_port,
        alpaca_ws_port=args.alpaca_ws_port,
        alpaca_key_id=args.alpaca_key_id,
        alpaca_secret_key=args.alpaca_secret_key,
        alpaca_symbols=tickers or None,
        alpaca_sip=not args.alpaca_iex_only,
        alpaca_rate_limit=args.alpaca_rate_limit,
        spot_api_key=args.spot_api_key,
        spot_api_secret=args.spot_api_secret,
        spot_balances=balances,
        spot_weight_limit=args.spot_weight_limit,
    )


def main(argv: list[str] | None = None) -> int:
    """``tacore exchange-sim``: serve until SIGTERM/SIGINT; 0 on a clean stop, 1 on failure."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"exchange-sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Event.set from a handler can deadlock with the main thread's stop.wait (same lock): hand it off.
        threading.Thread(target=stop.set, daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    sim = ExchangeSimulator(config)
    try:
        sim.start()
    except SimulatorError as exc:
        print(f"exchange-sim: {exc}", file=sys.stderr)
        return 1
    try:
        line = {"ws_url": sim.ws_url, "rest_url": sim.rest_url, "alpaca_rest_url": sim.alpaca_rest_url,
                "alpaca_stream_url": sim.alpaca_stream_url, "sim_time_ms": sim.hub.clock.now_ms()}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not sim.running:
                print("exchange-sim: simulator thread died", file=sys.stderr)
                return 1
        return 0
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())
