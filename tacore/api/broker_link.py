"""The sidecar's only line to the broker: one asyncio client and a sampler that polls it once a second.

Every page and endpoint that shows broker state reads the sampler's last snapshot, so however many
dashboards are open the broker answers ``broker.status`` and ``broker.metrics`` once a second, from
one place, and never logs them. Only the data-agent commands an operator sends go through on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import zmq.asyncio
from sqlalchemy.engine import Engine

from clients import AsyncClient, CurveKeys, KeyRefused, RemoteError, RequestTimeout
from tacore.api import log_reader
from tacore.api.errors import ComponentUnavailable
from tacore.api.resources import ResourceSampler, local_targets
from tacore.api.series import SeriesBuilder
from tacore.api.stats import with_traffic
from tacore.api.trading_view import TradingView

log = logging.getLogger("tacore.api")

T = TypeVar("T")

#: A broker snapshot older than this means the broker is down, whatever the last poll said.
STALE_AFTER_S = 3.0
RECENT_ERRORS = 50
#: The data agent's polls share the sampler's tick: bounded so a slow agent cannot delay broker polls much.
KLINE_TIMEOUT_MS = 700.0
#: symbols whose price the dashboard shows (the data agent keeps 100 by default)
MARKET_DATA_MAX_SYMBOLS = 100
_ERRORS_SCAN_LIMIT = 100_000  # on start, look for recent errors among the newest rows only


class BrokerLink:
    """Calls to the broker; a call that cannot be answered becomes ``ComponentUnavailable("broker")``.

    A DEALER keeps what it could not deliver and sends it when the broker comes back, so a request
    the sidecar gave up on must not stay queued: the sampler's persistent socket is replaced after a
    failed poll (``reset``), and on-demand calls (``persistent=False``: the operator's data-agent
    commands) each use a socket of their own, closed with LINGER 0 — a command answered 503 never
    runs minutes later.
    """

    def __init__(self, endpoint: str, *, timeout_ms: float = 1000.0, persistent: bool = True,
                 internal: bool = False, curve: CurveKeys | None = None) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.timeout_ms = timeout_ms
        self.persistent = persistent
        self.internal = internal  # the sidecar's own polling: marked so it stays out of user figures
        self._context = zmq.asyncio.Context()
        self._client: AsyncClient | None = None

    def _new_client(self) -> AsyncClient:
        return AsyncClient(self.endpoint, timeout_ms=self.timeout_ms, retries=0, context=self._context,
                           internal=self.internal, curve=self.curve)

    async def start(self) -> None:
        if self.persistent and self._client is None:
            self._client = self._new_client()
            await self._client.connect()

    async def reset(self) -> None:
        """Drop the persistent socket and what it still queues; the next call uses a fresh one."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.start()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._context.term()

    async def request(self, method: str, params: dict[str, Any] | None = None, *, timeout_ms: float | None = None,
                      priority: int | None = None, request_id: str | None = None) -> dict[str, Any]:
        """The whole reply; raises ComponentUnavailable when the broker does not answer in time.
        ``request_id``: the caller's (an HTTP ``Idempotency-Key``), else a fresh one."""
        wait = self.timeout_ms if timeout_ms is None else timeout_ms
        request_id = request_id or f"sidecar-{uuid.uuid4().hex}"
        try:
            if self.persistent:
                if self._client is None:
                    await self.start()
                assert self._client is not None
                return await self._client.request(method, params, request_id=request_id, priority=priority,
                                                  timeout_ms=wait, deadline_ms=wait)
            async with self._new_client() as client:
                return await client.request(method, params, request_id=request_id, priority=priority,
                                            timeout_ms=wait, deadline_ms=wait)
        except KeyRefused as exc:
            raise ComponentUnavailable("broker", f"the broker at {self.endpoint} refused the sidecar: "
                                       f"{exc.refusal} (CLIENT_KEY)") from None
        except RequestTimeout:
            raise ComponentUnavailable(
                "broker", f"the broker at {self.endpoint} did not answer {method} within {wait:.0f} ms") from None

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout_ms: float | None = None,
                   priority: int | None = None, request_id: str | None = None) -> Any:
        """The reply's data; an error reply raises ``clients.RemoteError``."""
        reply = await self.request(method, params, timeout_ms=timeout_ms, priority=priority, request_id=request_id)
        if reply.get("status") != "success":
            raise RemoteError.from_reply(reply)
        return reply.get("data")


class Sampler:
    """Polls the broker every ``interval_s`` and keeps the latest view plus a 15-minute history."""

    def __init__(self, link: BrokerLink, engine: Engine | None, *, interval_s: float = 1.0,
                 kline_every: int = 2, errors_every: int = 2) -> None:
        self.link = link
        self.engine = engine
        self.interval_s = interval_s
        self.kline_every = kline_every
        self.errors_every = errors_every
        self.series = SeriesBuilder()  # user traffic
        self.series_all = SeriesBuilder()  # user traffic and TACore's own calls (shown on request)
        self.resources = ResourceSampler()
        self.status: dict[str, Any] | None = None
        self.metrics: dict[str, Any] | None = None
        self.broker_ok_at: float | None = None  # wall time of the last good poll
        self.broker_error: str | None = "not polled yet"
        self.kline_status: dict[str, Any] | None = None
        self.kline_connections: dict[str, Any] | None = None
        self.kline_at: float | None = None
        self.kline_error: str | None = None
        #: ``get.market_data`` of the subscribed symbols (price, 24 h change), polled with the kline status
        self.market_data: dict[str, dict[str, Any]] = {}
        self.market_error: str | None = None
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self.database_error: str | None = None
        self.ticks = 0
        self._views_of = 0  # the tick whose poll the memoised views show (the current one once it has polled)
        #: the sampler's own cost, last tick (ms): broker round trip, CPU work in the loop, wake-up lag
        self.timings: dict[str, float] = {"poll_ms": 0.0, "work_ms": 0.0, "lag_ms": 0.0, "lag_max_ms": 0.0}
        self._lags: deque[float] = deque(maxlen=60)
        self._memo: dict[str, tuple[int, float, Any]] = {}
        self._warm: dict[str, Callable[[], Any]] = {}
        self._last_log_id: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.trading = TradingView()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tacore-api-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.trading.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.tick()
            except Exception:  # a bug here must not end the sampling: log it and go on
                log.exception("sampler tick failed")
            next_at += self.interval_s
            delay = next_at - loop.time()
            if delay < 0:  # fell behind (a slow broker): do not burst to catch up
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
            lag_ms = max(0.0, (loop.time() - next_at) * 1000.0)  # how long the loop was too busy to wake us
            self._lags.append(lag_ms)
            self.timings["lag_ms"] = round(lag_ms, 3)
            self.timings["lag_max_ms"] = round(max(self._lags), 3)

    # -- one poll ---------------------------------------------------------------------------------
    async def tick(self) -> None:
        self.ticks += 1
        ts = time.time()
        timeout = min(800.0, self.interval_s * 800.0)
        started = time.perf_counter()
        try:
            status, metrics = await asyncio.gather(self.link.call("broker.status", timeout_ms=timeout),
                                                   self.link.call("broker.metrics", timeout_ms=timeout))
        except (ComponentUnavailable, RemoteError) as exc:
            if self.broker_error is None or self.ticks == 1:
                log.warning("broker unreachable: %s", exc)
            self.broker_error = str(exc)
            self.series.gap(ts)
            self.series_all.gap(ts)
            if isinstance(exc, ComponentUnavailable):
                await self.link.reset()  # never deliver stale polls to a broker that comes back
            polled = time.perf_counter()
        else:
            polled = time.perf_counter()
            if self.broker_error is not None and self.broker_ok_at is not None:
                log.info("broker reachable again")
            self.status, self.metrics = status, metrics
            self.broker_ok_at, self.broker_error = ts, None
            self.series.observe(ts, metrics)
            self.series_all.observe(ts, with_traffic(metrics, True))
        self.resources.sample(local_targets(self.status) if self.broker_up() and self.status else {})
        self._views_of = self.ticks
        self._rebuild_warm()
        self.timings["poll_ms"] = round((polled - started) * 1000.0, 3)
        self.timings["work_ms"] = round((time.perf_counter() - polled) * 1000.0, 3)
        if self.ticks % self.kline_every == 1 or self.kline_every == 1:
            self.trading.poll_soon(self.link, self.status if self.broker_up() else None)
            await self._poll_data_agent()
        if self.engine is not None and (self.ticks % self.errors_every == 1 or self.errors_every == 1):
            await asyncio.to_thread(self._poll_errors)

    async def _poll_data_agent(self) -> None:
        if not self.data_agent()["up"]:
            return
        try:
            status, connections = await asyncio.gather(
                self.link.call("kline.status", {}, timeout_ms=KLINE_TIMEOUT_MS, priority=9),
                self.link.call("kline.connections", {}, timeout_ms=KLINE_TIMEOUT_MS, priority=9))
        except (ComponentUnavailable, RemoteError) as exc:
            self.kline_error = str(exc)
            return
        self.kline_status = status if isinstance(status, dict) else {"value": status}
        self.kline_connections = connections if isinstance(connections, dict) else {"connections": connections}
        self.kline_at, self.kline_error = time.time(), None
        await self._poll_market_data()

    async def _poll_market_data(self) -> None:
        """Prices and 24 h changes of the subscribed symbols, for the dashboard: one call, only when the
        data agent serves ``get.market_data`` (a stand-in agent may not)."""
        raw = (self.kline_status or {}).get("symbols", [])
        symbols = [str(s) for s in raw][:MARKET_DATA_MAX_SYMBOLS] if isinstance(raw, list) else []
        served = (self.status or {}).get("methods", {}).get("get.market_data", {}).get("workers", 0)
        if not symbols or not served:
            self.market_data, self.market_error = {}, None if not symbols else "get.market_data is not served"
            return
        try:
            data = await self.link.call("get.market_data", {"symbols": symbols}, timeout_ms=KLINE_TIMEOUT_MS,
                                        priority=9)
        except (ComponentUnavailable, RemoteError) as exc:
            self.market_error = str(exc)
            return
        entries = data.get("symbols") if isinstance(data, dict) else None
        self.market_data = {str(k): v for k, v in entries.items() if isinstance(v, dict)} \
            if isinstance(entries, dict) else {}
        self.market_error = None

    def _poll_errors(self) -> None:
        """New error rows since the last poll, by primary key (never a scan of the whole log)."""
        assert self.engine is not None
        try:
            upto = log_reader.max_id(self.engine)
            after = self._last_log_id
            if after is None or upto < after:  # first poll, or the log was recreated
                self.recent_errors.clear()
                after = max(0, upto - _ERRORS_SCAN_LIMIT)
            if upto > after:
                rows = log_reader.errors_between(self.engine, after, upto, RECENT_ERRORS)
                for row in reversed(log_reader.shape_rows(rows)):
                    self.recent_errors.appendleft(row)
            self._last_log_id = upto
            self.database_error = None
        except Exception as exc:
            self.database_error = f"{type(exc).__name__}: {exc}"[:300]

    # -- views ------------------------------------------------------------------------------------
    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` at most once per poll: every reader between two polls shares one rendering.

        A view stays valid while the next tick awaits the broker (it shows the last poll until the new
        one lands; a request in that window used to miss and render on its own). An entry also expires
        after two intervals, so a sampler that stopped ticking never pins an old answer; a build that
        raises (a 503) is not kept.
        """
        hit = self._memo.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] == self._views_of and now - hit[1] < 2 * self.interval_s:
            value: T = hit[2]
            return value
        value = build()
        self._memo[key] = (self._views_of, now, value)
        return value

    def keep_warm(self, key: str, build: Callable[[], Any]) -> None:
        """Build ``key``'s memo entry in every tick, right after the poll, instead of in the first request
        after it: a scrape then never pays for a rendering (under load that is the slowest request's cost).
        """
        self._warm[key] = build

    def _rebuild_warm(self) -> None:
        for key, build in self._warm.items():
            try:
                value = build()
            except ComponentUnavailable:  # the broker is down: the request path builds and answers the 503
                self._memo.pop(key, None)
                continue
            except Exception:  # a bug in a view: say so, and let the request path raise it too
                log.exception("sampler: rendering %r failed", key)
                self._memo.pop(key, None)
                continue
            self._memo[key] = (self._views_of, time.monotonic(), value)

    def broker_up(self) -> bool:
        return (self.broker_error is None and self.broker_ok_at is not None
                and time.time() - self.broker_ok_at <= STALE_AFTER_S)

    def snapshot_age_s(self) -> float | None:
        return None if self.broker_ok_at is None else round(time.time() - self.broker_ok_at, 3)

    def require_status(self) -> dict[str, Any]:
        """The last ``broker.status``, or a 503 when the broker is down."""
        if not self.broker_up() or self.status is None:
            raise ComponentUnavailable("broker", self._down_message())
        return self.status

    def require_metrics(self, internal: bool = False) -> dict[str, Any]:
        """The last ``broker.metrics``: user traffic, or with TACore's own calls added (``internal``)."""
        if not self.broker_up() or self.metrics is None:
            raise ComponentUnavailable("broker", self._down_message())
        return dict(with_traffic(self.metrics, internal))

    def traffic_series(self, internal: bool = False) -> SeriesBuilder:
        return self.series_all if internal else self.series

    def _down_message(self) -> str:
        since = "" if self.broker_ok_at is None else f" (last answer {time.time() - self.broker_ok_at:.1f} s ago)"
        return f"broker unavailable{since}: {self.broker_error or 'snapshot is stale'}"

    def workers(self) -> list[dict[str, Any]]:
        """Workers as ``GET /workers`` shows them, with CPU/memory where the process is local."""
        status = self.require_status()
        usage = self.resources.processes
        now = time.time()
        out = []
        for worker in status.get("workers", []):
            item = dict(worker)
            item["heartbeat_age_s"] = round(max(0.0, now - float(worker.get("last_heartbeat") or now)), 3)
            proc = usage.get(int(worker["pid"])) if worker.get("pid") and worker.get("state") != "dead" else None
            item["cpu_percent"] = None if proc is None else round(proc.cpu_percent, 1)
            item["rss_bytes"] = None if proc is None else proc.rss_bytes
            out.append(item)
        return out

    def data_agent(self) -> dict[str, Any]:
        """Whether a data agent is expected (the broker declares its methods) and whether one serves."""
        status = self.status if self.broker_up() else None
        if status is None:
            return {"configured": None, "up": False, "workers": []}
        agents = [w for w in status.get("workers", []) if w.get("kind") == "data-agent"]
        serving = int(status.get("methods", {}).get("kline.status", {}).get("workers", 0))
        configured = bool(agents) or "kline.status" in status.get("methods", {})
        return {"configured": configured, "up": serving > 0,
                "workers": [w.get("worker_id") for w in agents if w.get("state") != "dead"]}
