"""The order process (``tacore: orders``): one process owns orders, the ledger's single writer.

At start it brings the ledger's schema up to date, loads balances, positions and open orders, and
reconciles the open orders with their venues (completing what a kill -9 left ``accepted``). Then
three threads:

- the Worker thread serves ``execute.order``, ``order.*``, ``portfolio.positions`` and
  ``account.balances`` to the broker, with the engine as its commit barrier (group commit: a batch's
  replies leave once its orders are durable);
- the market thread reads ``DATA_READY`` and hands every closed 1m candle to the engine (resting
  orders fill while nobody calls), catches up from ``kline.history`` on what it missed (a restart, a
  dropped event), and ticks the clock (day orders past their session, remote orders in doubt);
- the main thread waits for SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from typing import Any

from tacore import heap
from tacore.events import EventSubscriber
from tacore.markets import load_markets
from tacore.settings import Settings
from tacore.store.idempotency import IdempotencyStore
from tacore.store.wal_checkpoint import WalCheckpointer, sqlite_file
from tacore.trading.accounts import Accounts, load_accounts
from tacore.trading.engine import OrderEngine
from tacore.trading.instruments import Instruments
from tacore.trading.ledger import Ledger, make_ledger_engine, upgrade_ledger
from tacore.trading.model import Portfolio
from tacore.trading.model.market import Candle
from tacore.trading.prices import PriceBook
from tacore.trading.reconcile import reconcile
from tacore.trading.venues import VenueContext, build_venues
from workers.methods import orders as order_methods
from workers.methods import portfolio as portfolio_methods
from workers.orders.market import BrokerMarket
from workers.registry import MethodRegistry

log = logging.getLogger("tacore.orders")

WORKER_ID = "orders"
ORDER_PROCESS_METHODS = frozenset({*order_methods.ORDER_METHODS, *portfolio_methods.PORTFOLIO_METHODS})
TICK_S = 1.0
CATCH_UP_EVERY_S = 15.0


class OrderProcess:
    def __init__(self, settings: Settings, *, accounts: Accounts | None = None) -> None:
        self.settings = settings
        self.accounts = accounts or load_accounts(settings.trading_config)
        self.instruments = Instruments(load_markets(settings.trading_config))
        want_volume = any(a.costs.volume_cap is not None for a in self.accounts)
        self.market = BrokerMarket(settings, want_volume=want_volume)
        self.prices = PriceBook(self.market.quotes, max_age_s=settings.orders_price_max_age_ms / 1000.0)
        self.db = make_ledger_engine(settings.orders_store_url, sqlite_synchronous=settings.orders_sqlite_synchronous,
                                     background_checkpoint=True)
        self.ledger = Ledger(self.db)
        portfolio = Portfolio()
        venues = build_venues(VenueContext(self.accounts, self.instruments, portfolio, self.prices, settings))
        self.engine = OrderEngine(self.ledger, self.accounts, self.instruments, self.prices, portfolio, venues,
                                  remote_poll_ms=settings.orders_remote_poll_ms)
        self.idempotency: IdempotencyStore | None = None
        self.checkpointers: list[WalCheckpointer] = []
        self.candles_seen = 0

    # -- start-up -----------------------------------------------------------------------------------------
    def start(self) -> None:
        before, now = upgrade_ledger(self.db)
        self.engine.load()
        summary = reconcile(self.engine)
        self.idempotency = IdempotencyStore(self.settings.idempotency_store_url, ttl_s=self.settings.idempotency_ttl_s,
                                            background_checkpoint=True)
        # Each order commits to both SQLite files (its idempotency claim and reply, its ledger rows): their
        # checkpoints run on threads of their own, never inside an order's commit (tacore/store/wal_checkpoint.py).
        s = self.settings
        for name, url in (("ledger", s.orders_store_url), ("idempotency", s.idempotency_store_url)):
            path = sqlite_file(url)
            if path is not None:
                self.checkpointers.append(WalCheckpointer(path, name=f"orders-{name}-checkpoint").start())
        # The runs our predecessor left open died with it: retries of them need not wait out their leases
        # (execute.order is resumable: its retry finds in the ledger what the first run did).
        ended = self.idempotency.end_leases(f"{WORKER_ID} pid %@{socket.gethostname()}")
        log.info("order process ready: ledger %s (schema %s), %d account(s), %d open order(s); %s; %d open "
                 "run(s) of a previous order process ended", self.db.url.render_as_string(hide_password=True), now,
                 len(self.accounts.names()), self.engine.open_count(), summary.line(), ended)
        if before != now:
            log.info("order ledger schema %s -> %s", before or "empty", now)
        # What start-up built (markets, calendars, accounts, the loaded ledger) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it while an order waits.
        heap.settle()

    def registry(self) -> MethodRegistry:
        registry = MethodRegistry()
        registry.include(order_methods.build_registry(self.engine))
        registry.include(portfolio_methods.build_registry(self.engine, self.prices.quotes))
        return registry

    # -- serving --------------------------------------------------------------------------------------------
    def serve(self, stop: threading.Event) -> None:
        from tacore.auth.credentials import worker_keys
        from workers.runtime import Worker

        s = self.settings
        # Credit 32: a wake-up's orders share one commit (half the credit per batch of replies).
        worker = Worker(s.worker_endpoint, self.registry(), worker_id=WORKER_ID, kind="orders",
                        credit=max(32, s.worker_credit), heartbeat_interval_ms=s.heartbeat_interval_ms,
                        liveness=s.heartbeat_liveness, reconnect_initial_ms=s.reconnect_initial_ms,
                        reconnect_max_ms=s.reconnect_max_ms, idempotency=self.idempotency,
                        handback_ms=s.worker_handback_ms, recycle_grace_ms=s.worker_recycle_grace_ms,
                        commit_barrier=self.engine, curve=worker_keys(s))
        threads = [threading.Thread(target=worker.run, args=(stop,), name="orders-worker", daemon=True),
                   threading.Thread(target=self._market_loop, args=(stop,), name="orders-market", daemon=True)]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join(10.0)
        try:
            self.engine.flush()
        except Exception as exc:
            log.error("order ledger: last commit failed: %s", exc)
        log.info("order process stopped after %d order(s) in %d commit(s)", self.ledger.committed_orders,
                 self.ledger.commits)

    def close(self) -> None:
        for checkpointer in self.checkpointers:
            checkpointer.stop()
        self.market.close()
        for venue in {id(v): v for v in self.engine.venues.values()}.values():
            closer = getattr(venue, "close", None)
            if callable(closer):
                closer()
        if self.idempotency is not None:
            self.idempotency.close()
        self.db.dispose()

    # -- the market thread ------------------------------------------------------------------------------------
    def _market_loop(self, stop: threading.Event) -> None:
        subscriber = EventSubscriber(self.settings.events_endpoint, ("kline.",))
        next_tick = next_catch_up = 0.0
        try:
            while not stop.is_set():
                got = subscriber.recv(250)
                if got is not None:
                    self._on_event(*got)
                now = time.monotonic()
                try:
                    if now >= next_tick:
                        next_tick = now + TICK_S
                        self.engine.on_clock()
                    if now >= next_catch_up:
                        next_catch_up = now + CATCH_UP_EVERY_S
                        self._catch_up_all()
                except Exception as exc:  # the ledger or a venue failing must not end the thread
                    log.error("order process: clock/catch-up failed: %s", exc)
        finally:
            subscriber.close()

    def _on_event(self, topic: str, event: dict[str, Any]) -> None:
        if not topic.endswith(".1m"):
            return
        raw = event.get("candle")
        if not isinstance(raw, dict) or not raw.get("closed"):
            return
        try:
            candle = Candle.from_wire(raw)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("DATA_READY %s: unreadable candle dropped: %s", topic, exc)
            return
        self.candles_seen += 1
        try:
            start = self.engine.needs_candles().get(candle.symbol)
            if start is not None and start < candle.open_ms:
                self._catch_up(candle.symbol, start, candle.open_ms - 60_000)
            self.engine.on_candle(candle)
        except Exception as exc:
            log.error("candle %s %s: %s", candle.symbol, candle.open_ms, exc)

    def _catch_up_all(self) -> None:
        now_ms = int(time.time() * 1000)
        for symbol, start in self.engine.needs_candles().items():
            newest = self.prices.peek(symbol)
            end = max(now_ms, newest.ts_ms if newest is not None else 0)
            if start + 60_000 <= end:  # a candle should have closed since
                self._catch_up(symbol, start, end)

    def _catch_up(self, symbol: str, start_ms: int, end_ms: int) -> None:
        candles = self.market.closed_candles(symbol, start_ms, end_ms)
        if candles is None:
            log.warning("catch-up of %s from %d: candle history unavailable; asking again later", symbol, start_ms)
            return
        for candle in candles:
            self.engine.on_candle(candle)
        if candles:
            log.info("caught up %d candle(s) of %s from %d", len(candles), symbol, start_ms)


def run(settings: Settings) -> None:
    """Process entry point: serve until SIGTERM/SIGINT, then commit and return."""
    from tacore.logconfig import configure_logging
    from tacore.signals import stop_event_on_signals

    configure_logging(settings, "orders")
    stop = stop_event_on_signals(signal.SIGTERM, signal.SIGINT)
    process = OrderProcess(settings)
    try:
        process.start()
        process.serve(stop)
    finally:
        process.close()

