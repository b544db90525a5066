"""Vectorised generation of 1-minute candles: every one a pure function of (seed, symbol, minute).

The price is a sum of value-noise layers (grid spacings of 1, 4, 16 ... 65536 minutes, amplitude
growing with the square root of the spacing, so it moves like a random walk at every scale) which
can be evaluated at any minute without walking from an origin. That gives REST history for any past
range, and makes the candle streamed live and the REST row for the same span identical.

The atom is the 1-minute candle; every longer interval is the exact aggregate of its minutes
(integer units, see ``candle.py``). Only +, -, *, / and rint are used on floats, which IEEE makes
bit-exact whether numpy evaluates one minute or a million, so live and history always agree.
Inside each minute a 5-second bridge path (pinned to the minute's open and close) gives the live
feed plausible updates that converge on the closed candle.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tacore.exchange_sim.candle import UNITS, Candle
from tacore.exchange_sim.intervals import MINUTE_MS, close_time_of

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

_MASK = (1 << 64) - 1
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_LEVELS = 9  # grid spacings 4**0 .. 4**8 minutes
STEP = 0.0008  # amplitude of the 1-minute layer, relative to the base price
_BRIDGE = STEP * 0.5  # amplitude of the intra-minute bridge
GRID = 12  # intra-minute grid points (5 s apart)
GRID_MS = MINUTE_MS // GRID
_DAY_MINUTES = 1440
_DAY_TRADE_IDS = 1_000_000  # trade ids of day d start at d * this (a day has < 700,000 trades)
# Noise stream numbers: one independent noise per purpose.
_S_HIGH, _S_LOW, _S_VOL, _S_TRADES, _S_TAKER, _S_TAU_H, _S_TAU_L, _S_BRIDGE = range(100, 108)

_KNOWN_PRICES = {
    "BTCUSDT": 65_000.0,
    "ETHUSDT": 3_200.0,
    "BNBUSDT": 580.0,
    "SOLUSDT": 150.0,
    "XRPUSDT": 0.55,
    "DOGEUSDT": 0.12,
    "ADAUSDT": 0.45,
    "ETHBTC": 0.05,
    "BNBBTC": 0.009,
}
#: Symbols whose price level is a real one (the spot API's exchangeInfo lists them when no whitelist is set).
KNOWN_SYMBOLS: tuple[str, ...] = tuple(_KNOWN_PRICES)
# (log10 price range, log10 quote turnover per minute range) by quote asset
_QUOTE_PROFILE = {
    "FDUSD": ((-1.3, 4.7), (4.0, 5.5)),
    "USDT": ((-1.3, 4.7), (4.0, 5.5)),
    "BTC": ((-6.0, -1.5), (-0.5, 1.0)),
    "ETH": ((-5.0, -0.5), (0.5, 2.0)),
    "BNB": ((-3.5, 0.5), (1.5, 3.0)),
}


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """The constants of one symbol's market, derived from the seed and the symbol name."""

    symbol: str
    key: int  # 64-bit noise key
    base_units: float  # reference price in 1e-8 units
    tick: int  # price step in units
    lot: int  # quantity step in units
    volume_units: float  # typical base volume per minute in units


def make_profile(symbol: str, seed: int) -> SymbolProfile:
    """Derive a symbol's constants deterministically (hashlib, never Python's salted hash)."""
    digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=24).digest()
    key = int.from_bytes(digest[:8], "little")
    r_price = int.from_bytes(digest[8:16], "little") / 2.0**64
    r_volume = int.from_bytes(digest[16:24], "little") / 2.0**64
    quote = next((q for q in _QUOTE_PROFILE if symbol.endswith(q)), "USDT")
    (p_lo, p_hi), (t_lo, t_hi) = _QUOTE_PROFILE[quote]
    price = _KNOWN_PRICES.get(symbol, 10.0 ** (p_lo + (p_hi - p_lo) * r_price))
    turnover = 10.0 ** (t_lo + (t_hi - t_lo) * r_volume)
    base_volume = turnover / price
    tick = 10 ** max(0, math.floor(math.log10(price)) - 6 + 8)
    lot = 10 ** max(0, math.floor(math.log10(base_volume)) - 4 + 8)
    return SymbolProfile(symbol, key, price * UNITS, tick, lot, base_volume * UNITS)


def _mix(x: U64) -> U64:
    """splitmix64 finaliser: a good 64-bit hash that numpy evaluates element-wise."""
    x = x ^ (x >> np.uint64(30))
    x = x * _C1
    x = x ^ (x >> np.uint64(27))
    x = x * _C2
    return x ^ (x >> np.uint64(31))


def uniform_noise(key: int, stream: int, idx: I64) -> F64:
    """Uniform noise in [-1, 1) for each index of one noise stream."""
    salt = np.uint64((key + stream * 0x632BE59BD9B4E019) & _MASK)
    h = _mix(idx.astype(np.uint64) * _GOLD + salt)
    return (h >> np.uint64(11)).astype(np.float64) * (2.0**-52) - 1.0


def level_sum(key: int, minutes: I64) -> F64:
    """Relative price offset x at each minute boundary (sum of the value-noise layers)."""
    x = np.zeros(minutes.shape, dtype=np.float64)
    for level in range(_LEVELS):
        spacing = 4**level
        cell = minutes // spacing
        frac = (minutes - cell * spacing).astype(np.float64) / float(spacing)
        v0 = uniform_noise(key, level, cell)
        v1 = uniform_noise(key, level, cell + 1)
        x = x + (STEP * 2**level) * (v0 + (v1 - v0) * frac)
    return x


def quantize(p: SymbolProfile, rel: F64) -> I64:
    """Price in units, rounded to the symbol's tick, from a relative offset."""
    ticks = np.rint((p.base_units * (1.0 + rel)) / float(p.tick))
    return ticks.astype(np.int64) * p.tick


@dataclass(frozen=True, slots=True)
class MinuteBlock:
    """Column arrays of consecutive closed 1-minute candles."""

    first_minute: int
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    quote_volume: I64
    trades: I64
    taker_base: I64
    taker_quote: I64
    first_trade_id: I64
    x: F64  # relative offsets at the count+1 minute boundaries (for the bridge path)


def minute_block(p: SymbolProfile, first_minute: int, count: int) -> MinuteBlock:
    """Closed 1-minute candles [first_minute, first_minute + count), vectorised."""
    bounds = np.arange(first_minute, first_minute + count + 1, dtype=np.int64)
    minutes = bounds[:-1]
    x = level_sum(p.key, bounds)
    price = quantize(p, x)
    o, c = price[:-1], price[1:]
    wick = p.base_units * _BRIDGE
    up = np.ceil(wick * (1.5 + 0.5 * uniform_noise(p.key, _S_HIGH, minutes)) / float(p.tick)).astype(np.int64)
    down = np.ceil(wick * (1.5 + 0.5 * uniform_noise(p.key, _S_LOW, minutes)) / float(p.tick)).astype(np.int64)
    h = np.maximum(o, c) + (up + 1) * p.tick
    lo = np.maximum(np.minimum(o, c) - (down + 1) * p.tick, p.tick)
    move = np.abs(x[1:] - x[:-1]) / STEP
    size = 0.6 + 0.4 * uniform_noise(p.key, _S_VOL, minutes) + 0.5 * move
    v = np.maximum(np.rint(p.volume_units * size / float(p.lot)).astype(np.int64), 1) * p.lot
    taker_share = 0.5 + 0.2 * uniform_noise(p.key, _S_TAKER, minutes)
    vb = np.rint((v.astype(np.float64) * taker_share) / float(p.lot)).astype(np.int64) * p.lot
    typical = (o + h + lo + c).astype(np.float64) * 0.25
    q = np.rint(v.astype(np.float64) * typical / float(UNITS)).astype(np.int64)
    qb = np.rint(vb.astype(np.float64) * typical / float(UNITS)).astype(np.int64)
    n, first_id = _trades(p, first_minute, count)
    return MinuteBlock(first_minute, o, h, lo, c, v, q, n, vb, qb, first_id, x)


def _trade_counts(p: SymbolProfile, minutes: I64) -> I64:
    return np.rint(250.0 + 200.0 * uniform_noise(p.key, _S_TRADES, minutes)).astype(np.int64)


def _trades(p: SymbolProfile, first_minute: int, count: int) -> tuple[I64, I64]:
    """Trade counts and first trade ids; ids run without gaps inside each UTC day, like Binance's."""
    day_start = first_minute - first_minute % _DAY_MINUTES
    span = np.arange(day_start, first_minute + count, dtype=np.int64)
    n_span = _trade_counts(p, span)
    before = np.cumsum(n_span) - n_span  # trades in the span before each minute
    in_day = span % _DAY_MINUTES
    offset = before - before[np.arange(len(span)) - in_day]
    first_id = (span // _DAY_MINUTES) * _DAY_TRADE_IDS + offset
    k = first_minute - day_start
    return n_span[k:], first_id[k:]


def aggregate(block: MinuteBlock, minutes_per_candle: int, interval: str) -> list[Candle]:
    """Candles of ``interval`` from a block that starts on a candle boundary and holds whole candles."""
    k = minutes_per_candle
    rows = len(block.open) // k

    def shaped(a: I64) -> I64:
        return a[: rows * k].reshape(rows, k)

    o = shaped(block.open)[:, 0].tolist()
    c = shaped(block.close)[:, -1].tolist()
    h = shaped(block.high).max(axis=1).tolist()
    lo = shaped(block.low).min(axis=1).tolist()
    v = shaped(block.volume).sum(axis=1).tolist()
    q = shaped(block.quote_volume).sum(axis=1).tolist()
    n = shaped(block.trades).sum(axis=1).tolist()
    vb = shaped(block.taker_base).sum(axis=1).tolist()
    qb = shaped(block.taker_quote).sum(axis=1).tolist()
    first_id = shaped(block.first_trade_id)[:, 0].tolist()
    last_id = (shaped(block.first_trade_id)[:, -1] + shaped(block.trades)[:, -1] - 1).tolist()
    out: list[Candle] = []
    for i in range(rows):
        first_minute = block.first_minute + i * k
        open_time = first_minute * MINUTE_MS
        out.append(
            Candle(
                open_time,
                close_time_of(open_time, interval),
                o[i],
                h[i],
                lo[i],
                c[i],
                v[i],
                q[i],
                n[i],
                vb[i],
                qb[i],
                first_id[i],
                last_id[i],
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class IntraMinute:
    """Inside each minute of a block: 11 inner grid prices and when the high and the low trade.

    Kept as arrays (an hour is ~6 KB) and turned into Python values one minute at a time.
    """

    inner: I64  # (minutes, 11) prices at 5 s ... 55 s, inside the minute's low/high
    tau_high: I64  # ms after the open of the trade that makes the high
    tau_low: I64

    def path(self, i: int, candle: Candle) -> tuple[int, ...]:
        """The 13 grid prices of minute ``i``: open, the 11 inner points, close."""
        return (candle.open, *self.inner[i].tolist(), candle.close)


def intra_minute(p: SymbolProfile, block: MinuteBlock) -> IntraMinute:
    """The 5-second bridge path of every minute of a block, pinned to its open and close."""
    count = len(block.open)
    minutes = np.arange(block.first_minute, block.first_minute + count, dtype=np.int64)
    j = np.arange(1, GRID, dtype=np.int64)
    x0, x1 = block.x[:-1, None], block.x[1:, None]
    bridge = uniform_noise(p.key, _S_BRIDGE, minutes[:, None] * 16 + j[None, :])
    rel = x0 + (x1 - x0) * (j.astype(np.float64) / float(GRID))[None, :] + _BRIDGE * bridge
    inner = np.clip(quantize(p, rel), block.low[:, None], block.high[:, None])
    tau_h = ((0.5 + 0.5 * uniform_noise(p.key, _S_TAU_H, minutes)) * (MINUTE_MS - 1)).astype(np.int64)
    tau_l = ((0.5 + 0.5 * uniform_noise(p.key, _S_TAU_L, minutes)) * (MINUTE_MS - 1)).astype(np.int64)
    return IntraMinute(inner, tau_h, tau_l)
