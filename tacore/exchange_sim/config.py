"""The simulator's settings and its simulated clock.

Defaults are Binance's own figures, so a client tuned against the simulator is tuned for the
exchange; tests shrink the timers (ping interval, pong timeout, connection lifetime).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

#: the default account's API key pair (64 letters and digits, as Binance's); any key works once added
DEFAULT_SPOT_API_KEY = "SimSpotKey" + "7f3a9c2e5b8d1f4a6c9e2b5d8f1a4c7e9b2d5f8a1c4e7b9d2f5a8c"
DEFAULT_SPOT_API_SECRET = "SimSpotSecret" + "4d7a1e8b5c2f9a6d3e0b7c4f1a8d5e2b9c6f3a0d7e4b1c8f5a2"


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulator can be told. Ports 0 mean 'pick a free port'."""

    host: str = "127.0.0.1"
    ws_port: int = 0
    rest_port: int = 0
    seed: int = 0
    symbols: frozenset[str] | None = None  # whitelist; None = any well-formed symbol
    clock_speed: float = 1.0  # simulated ms per real ms
    start_time_ms: int | None = None  # simulated time at start; None = wall clock
    update_interval_ms: float = 2000.0  # kline update cadence (real time), Binance: 2000
    partial_step_ms: int = 1000  # open-candle figures change at most this often (simulated ms)
    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_connection_age_s: float = 24 * 3600.0
    max_frames_per_s: int = 5  # incoming frames per connection per second; past it: close 1008
    max_connection_attempts: int = 300  # per IP per window; past it: handshake refused with 429
    connection_window_s: float = 300.0
    max_streams_per_connection: int = 1024
    rest_weight_per_min: int = 6000  # REST request weight per IP and clock minute; past it: HTTP 429
    write_buffer_limit: int = 8 * 1024 * 1024  # skip open-candle updates to a client this far behind
    # -- Alpaca market-data API v2 (US equities), on its own two ports: docs/exchange-sim.md
    alpaca: bool = True
    alpaca_rest_port: int = 0
    alpaca_ws_port: int = 0
    alpaca_key_id: str = "SIMKEYID"
    alpaca_secret_key: str = "SIMSECRETKEY"
    alpaca_symbols: frozenset[str] | None = None  # listed tickers; None = the US universe of trading_config
    alpaca_sip: bool = True  # the key pair's plan includes real-time SIP data (else: IEX only)
    alpaca_rate_limit: int = 200  # REST requests per minute per key; past it: 429
    alpaca_auth_timeout_s: float = 10.0  # a stream connection must authenticate within this
    alpaca_max_connections: int = 1  # authenticated stream connections per key and endpoint
    alpaca_symbol_limit: int = 30  # trades + quotes symbols per IEX stream connection
    # -- Binance spot trading (REST, on rest_port): docs/exchange-sim.md
    spot_api_key: str = DEFAULT_SPOT_API_KEY
    spot_api_secret: str = DEFAULT_SPOT_API_SECRET
    #: (asset, amount) the default key's account starts with
    spot_balances: tuple[tuple[str, str], ...] = (("USDT", "100000"), ("BTC", "1"), ("ETH", "10"), ("BNB", "10"))
    spot_commission: Decimal = Decimal("0.001")  # maker and taker rate of the default account (0.1 %)
    #: share of each minute's volume a resting order may fill against, spread over the path's points
    spot_liquidity_share: float = 1.0
    spot_weight_limit: int = 6000  # request weight per minute (Binance: 6000)
    spot_orders_per_10s: int = 100  # new orders per account (Binance: 100 per 10 s)
    spot_orders_per_day: int = 200_000

    def __post_init__(self) -> None:
        if self.clock_speed <= 0:
            raise ValueError("clock_speed must be > 0")
        if self.update_interval_ms <= 0:
            raise ValueError("update_interval_ms must be > 0")
        if self.ping_interval_s <= 0 or self.pong_timeout_s <= 0:
            raise ValueError("ping_interval_s and pong_timeout_s must be > 0")
        if self.spot_weight_limit < 1 or self.spot_orders_per_10s < 1 or self.spot_liquidity_share <= 0:
            raise ValueError("spot_weight_limit and spot_orders_per_10s must be >= 1, spot_liquidity_share > 0")
        if self.alpaca_rate_limit < 1 or self.alpaca_max_connections < 1:
            raise ValueError("alpaca_rate_limit and alpaca_max_connections must be >= 1")


class SimClock:
    """Simulated epoch milliseconds: starts at ``start_ms`` and runs ``speed`` times real time."""

    def __init__(self, speed: float = 1.0, start_ms: int | None = None) -> None:
        self.speed = speed
        self._given_start = start_ms
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._mono0 = time.monotonic()
        #: added to the simulated time (the control API's clock skew)
        self.skew_ms = 0

    def restart(self) -> None:
        """Run from the start time again, counting from now (the simulator calls it when it starts)."""
        if self._given_start is None:
            self.start_ms = int(time.time() * 1000)
        self._mono0 = time.monotonic()

    def now_ms(self) -> int:
        """The current simulated time."""
        return self.start_ms + int((time.monotonic() - self._mono0) * 1000.0 * self.speed) + self.skew_ms

    def real_delay_s(self, sim_ms: float) -> float:
        """Real seconds until ``sim_ms`` simulated milliseconds have passed."""
        return max(0.0, sim_ms / self.speed / 1000.0)
