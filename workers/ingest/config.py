"""Tunables of the data agent that are not operator settings: they follow from the exchange's limits
and its 2-second kline updates, and only a simulator running faster needs other values (tests, demo,
benchmarks), through ``TACORE_INGEST_<FIELD>`` environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from tacore.errors import ConfigError
from tacore.store.price_cache import DEFAULT_PREFIX

ENV_PREFIX = "TACORE_INGEST_"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    #: a stream silent this long is re-subscribed (Binance updates klines every 2 s: 3 updates missed);
    #: a connection silent this long is pinged, and replaced when no pong comes back
    stall_s: float = 6.0
    flush_ms: int = 100  # rows wait at most this long (plus the INSERT) before they are readable
    batch_rows: int = 10_000
    buffer_rows: int = 1_000_000
    streams_per_connection: int = 400
    names_per_frame: int = 200
    frames_per_s: int = 4
    max_conn_age_s: float = 23.5 * 3600
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_attempts_per_5min: int = 250
    backfill_concurrency: int = 4
    #: how long add_* waits for the exchange to acknowledge new streams before answering "pending"
    subscribe_wait_s: float = 3.0
    cache_prefix: str = DEFAULT_PREFIX
    worker_id: str = "data-agent-1"
    #: a symbol is checked against the exchange's REST API before it is added
    verify_symbols: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestConfig:
        """Defaults, overridden by ``TACORE_INGEST_<FIELD>`` variables (for a fast simulator: demo, tests)."""
        env = os.environ if environ is None else environ
        overrides: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            default: Any = f.default
            try:
                if isinstance(default, bool):
                    overrides[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    overrides[f.name] = type(default)(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{f.name.upper()}: {raw!r} is not a {type(default).__name__}") from None
        return cls(**overrides)
