"""History depth: how many candles of each interval a stream keeps, and what a stream still has to fetch.

Feed-agnostic. A feed supplies, per stream, the **anchor** (open time of the candle running at the
source's now), the market's calendar and what the store holds (``StoredSpan``); ``plan_stream`` answers
with the ranges to fetch and where the live stream's completeness resumes:

- nothing stored in the window: fetch ``[window start, anchor - 1 interval]``; the live stream's
  backfill resumes from the anchor, so the two meet without a gap whatever arrives first;
- something stored: fetch only what is missing — before the oldest stored candle, and (where the
  market trades continuously, so every interval has a candle) the holes inside; the live stream
  resumes after the newest stored candle, as it always has.

Ranges are fetched newest first and each page newest first, so a fetch cut short by a restart leaves the
stored candles contiguous and the next start fetches only what is still missing, never the whole depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tacore.intervals import INTERVAL_MS, INTERVALS
from tacore.markets.calendar import DAY_MS, AlwaysOpen, TradingCalendar
from tacore.store.coverage import window_coverage
from tacore.store.klines import KlineStore

DEFAULT_DEPTH = 1000

Range = tuple[int, int]  # open times, first and last, inclusive


@dataclass(frozen=True, slots=True)
class HistoryDepth:
    """Candles of history per interval: ``default`` unless ``per_interval`` names the interval; 0 = none."""

    default: int = DEFAULT_DEPTH
    per_interval: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.per_interval) - set(INTERVALS)
        if unknown or self.default < 0 or any(v < 0 for v in self.per_interval.values()):
            raise ValueError(f"history depth: intervals {sorted(unknown)} unknown or a negative depth")

    def of(self, interval: str) -> int:
        return self.per_interval.get(interval, self.default)

    def as_dict(self) -> dict[str, int]:
        return {interval: self.of(interval) for interval in INTERVALS}


@dataclass(frozen=True, slots=True)
class StoredSpan:
    """What the store holds of one stream: inside the history window (``oldest``, ``count``, ``holes``)
    and at all (``newest``, ``newest_closed``, the live stream's resume point)."""

    oldest: int | None = None  # oldest closed candle in the window
    count: int = 0  # closed candles in the window
    holes: tuple[Range, ...] = ()  # (candle before, candle after) around each hole in the window
    newest: int | None = None  # newest candle stored, open or closed
    newest_closed: int | None = None


@dataclass(frozen=True, slots=True)
class StreamPlan:
    symbol: str
    interval: str
    fetch: tuple[Range, ...]  # newest range first
    resume_after: int | None  # the live stream's completeness resumes after this open time (None: at its start)
    wanted: int  # candles expected from ``fetch`` and the resume, an estimate for progress


def resume_point(span: StoredSpan, step: int) -> int | None:
    """After a restart: the newest closed candle, or the one before the newest stored candle when that
    one was still open (it closed while we were away)."""
    if span.newest is None:
        return None
    before_open = span.newest - step
    return before_open if span.newest_closed is None else max(span.newest_closed, before_open)


def resume_points(newest: Mapping[tuple[str, str], tuple[int, int | None]]) -> dict[tuple[str, str], int]:
    """Where each stream's completeness resumes after a restart, from the store's newest open times per
    stream (any candle, closed candle)."""
    points = {}
    for (symbol, interval), (any_state, closed) in newest.items():
        point = resume_point(StoredSpan(newest=any_state, newest_closed=closed), INTERVAL_MS[interval])
        if point is not None:
            points[(symbol, interval)] = point
    return points


def plan_stream(symbol: str, interval: str, depth: int, anchor: int, span: StoredSpan,
                calendar: TradingCalendar | None = None) -> StreamPlan:
    """What one stream still needs to hold ``depth`` candles before ``anchor`` and be complete after it."""
    calendar = calendar or AlwaysOpen()
    step = INTERVAL_MS[interval]
    resume = resume_point(span, step)
    if depth <= 0:
        return StreamPlan(symbol, interval, (), resume, _tail(calendar, interval, resume, anchor))
    start = window_start(calendar, interval, depth, anchor)
    fetch: list[Range] = []
    if span.count == 0 or span.oldest is None:
        fetch.append((start, anchor - step))
        resume = anchor - step if resume is None or resume < anchor - step else resume
    else:
        if isinstance(calendar, AlwaysOpen):  # every interval has a candle: a hole is a loss
            fetch.extend((before + step, after - step) for before, after in span.holes if after - before > step)
        if span.oldest > start:
            fetch.append((start, span.oldest - step))
    fetch.sort(reverse=True)
    wanted = sum(bars_between(calendar, interval, first, last) for first, last in fetch)
    return StreamPlan(symbol, interval, tuple(fetch), resume, wanted + _tail(calendar, interval, resume, anchor))


def _tail(calendar: TradingCalendar, interval: str, resume: int | None, anchor: int) -> int:
    """Closed candles between the resume point and the anchor (the live stream's backfill)."""
    if resume is None:
        return 0
    return bars_between(calendar, interval, resume + INTERVAL_MS[interval], anchor - INTERVAL_MS[interval])


def window_start(calendar: TradingCalendar, interval: str, count: int, anchor: int) -> int:
    """Open time of the oldest of the ``count`` candles before ``anchor`` on this calendar."""
    step = INTERVAL_MS[interval]
    if isinstance(calendar, AlwaysOpen) or count <= 0:
        return anchor - count * step
    need, end = count, anchor
    chunk = max(7 * DAY_MS, count * step * 2)
    while need > 0:
        sessions = calendar.sessions(end - chunk, end)
        if not sessions:
            return end - chunk  # before the calendar's first session: as far as it goes
        for first, last in _session_bars(sessions, step, end)[::-1]:
            n = (last - first) // step + 1
            if n >= need:
                return last - (need - 1) * step
            need -= n
        end = sessions[0][0]
    return end


def bars_between(calendar: TradingCalendar, interval: str, first: int, last: int) -> int:
    """Candles with an open time in ``[first, last]`` on this calendar (an estimate for session markets:
    one per interval slot a session touches, one per session for daily candles)."""
    step = INTERVAL_MS[interval]
    if last < first:
        return 0
    if isinstance(calendar, AlwaysOpen):
        return (last - first) // step + 1
    total = 0
    aligned_first = first + (-first) % step if step < DAY_MS else first
    for lo, hi in _session_bars(calendar.sessions(first, last + step), step, last + step):
        a, b = max(lo, aligned_first), min(hi, last)
        if b >= a:
            total += (b - a) // step + 1
    return total


def _session_bars(sessions: list[tuple[int, int]], step: int, end: int) -> list[Range]:
    """Per session, the open times of its first and last candle before ``end``."""
    out: list[Range] = []
    for open_ms, close_ms in sessions:
        if open_ms >= end:
            continue
        if step >= DAY_MS:
            out.append((open_ms - open_ms % DAY_MS, open_ms - open_ms % DAY_MS))
            continue
        last = min(close_ms, end) - 1
        out.append((open_ms - open_ms % step, last - last % step))
    return out


def utc_anchor(now_ms: int, interval: str) -> int:
    """Open time of the candle running at ``now_ms`` where candles align on UTC (Binance)."""
    return now_ms - now_ms % INTERVAL_MS[interval]


def plan_history(store: KlineStore, pairs: list[tuple[str, str]], depth: HistoryDepth, now_ms: int,
                 calendar: TradingCalendar | None = None,
                 anchor: Callable[[int, str], int] = utc_anchor) -> list[StreamPlan]:
    """Plans for the streams of one feed from what the store holds (two statements). Blocking."""
    calendar = calendar or AlwaysOpen()
    anchors = {pair: anchor(now_ms, pair[1]) for pair in pairs}
    starts = {pair: window_start(calendar, pair[1], depth.of(pair[1]), anchors[pair])
              for pair in pairs if depth.of(pair[1]) > 0}
    coverage = window_coverage(store, starts) if starts else {}
    ends = store.newest_open_times()
    plans = []
    for pair in pairs:
        cov = coverage.get(pair)
        newest, newest_closed = ends.get(pair, (None, None))
        span = StoredSpan(cov.oldest if cov else None, cov.count if cov else 0, cov.holes if cov else (),
                          newest, newest_closed)
        plans.append(plan_stream(pair[0], pair[1], depth.of(pair[1]), anchors[pair], span, calendar))
    return plans


def resume_after(plans: list[StreamPlan]) -> dict[tuple[str, str], int]:
    """Where each planned stream's live completeness resumes (for ``KlineFeed.add``)."""
    return {(p.symbol, p.interval): p.resume_after for p in plans if p.resume_after is not None}


def plan_summary(plans: list[StreamPlan]) -> str:
    """One line for the log: how much of the planned history is already stored."""
    fetching = [p for p in plans if p.fetch]
    ranges = sum(len(p.fetch) for p in fetching)
    return (f"{len(plans)} streams: {len(plans) - len(fetching)} hold their depth, {len(fetching)} to fetch in "
            f"{ranges} ranges, ~{sum(p.wanted for p in plans)} candles with the resume backfill")
