"""The state of what a worker depends on (database, cache), for ``health.check {"detailed": true}``,
and the data agent's last check of its candle store against the exchange's clock (``clock.json``
in its data directory: candles later than the source's clock, see ``workers.ingest.clock``).

Probed at most every few seconds and cached, so a burst of health checks costs nothing.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from tacore.settings import Settings
from tacore.store.request_log import make_engine
from workers.ingest.clock import read_clock_file

_CACHE_S = 2.0


class DependencyProbe:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine = make_engine(settings.sqlalchemy_url)
        self._checked_at = 0.0
        self._states: dict[str, dict[str, Any]] = {}
        self._store_clock: dict[str, Any] | None = None

    def states(self) -> dict[str, dict[str, Any]]:
        self._refresh()
        return self._states

    def store_clock(self) -> dict[str, Any] | None:
        self._refresh()
        return self._store_clock

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at > _CACHE_S:
            self._states = {"database": self._database(), "cache": self._cache()}
            self._store_clock = read_clock_file(self.settings.data_dir / "data-agent")
            self._checked_at = now

    def _database(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return {"status": "down", "kind": self._engine.dialect.name, "error": str(exc)[:200]}
        return {"status": "up", "kind": self._engine.dialect.name,
                "latency_ms": round((time.perf_counter() - started) * 1000.0, 3)}

    def _cache(self) -> dict[str, Any]:
        if not self.settings.redis_url:
            return {"status": "up", "kind": "memory"}
        import redis

        started = time.perf_counter()
        try:
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            client.ping()
            client.close()
        except Exception as exc:
            return {"status": "down", "kind": "redis", "error": str(exc)[:200]}
        return {"status": "up", "kind": "redis", "latency_ms": round((time.perf_counter() - started) * 1000.0, 3)}


_probe: DependencyProbe | None = None


def configure(settings: Settings) -> None:
    global _probe
    _probe = DependencyProbe(settings)


def configured_settings() -> Settings:
    """The settings this worker was started with (loaded from the environment if none were given)."""
    if _probe is not None:
        return _probe.settings
    from tacore.settings import load_settings

    return load_settings()


def dependency_states() -> dict[str, dict[str, Any]]:
    if _probe is None:
        return {}
    return _probe.states()


def store_clock() -> dict[str, Any] | None:
    """The data agent's last store-clock report, None when it has written none (or runs elsewhere)."""
    return None if _probe is None else _probe.store_clock()
