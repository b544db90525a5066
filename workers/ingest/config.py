"""Tunables of the data agent that are not operator settings: they follow from the exchange's limits
and its 2-second kline updates, and only a simulator running faster needs other values (tests, demo,
benchmarks), through ``TACORE_INGEST_<FIELD>`` environment variables.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tacore.errors import ConfigError
from tacore.store.price_cache import DEFAULT_PREFIX

ENV_PREFIX = "TACORE_INGEST_"


class IngestConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    #: a stream silent this long is re-subscribed (Binance updates klines every 2 s: 3 updates missed);
    #: a connection silent this long is pinged, and replaced when no pong comes back
    stall_s: Annotated[float, Field(gt=0)] = 6.0
    #: rows wait at most this long (plus the INSERT) before they are readable
    flush_ms: Annotated[int, Field(gt=0)] = 100
    batch_rows: Annotated[int, Field(gt=0)] = 10_000
    buffer_rows: Annotated[int, Field(gt=0)] = 1_000_000
    streams_per_connection: Annotated[int, Field(gt=0, le=1024)] = 400  # the exchange's limit per connection
    names_per_frame: Annotated[int, Field(gt=0)] = 200
    frames_per_s: Annotated[int, Field(gt=0, le=5)] = 4  # the exchange closes a connection past 5 frames/s
    max_conn_age_s: Annotated[float, Field(gt=0)] = 23.5 * 3600
    backoff_initial_s: Annotated[float, Field(gt=0)] = 0.5
    backoff_max_s: Annotated[float, Field(gt=0)] = 30.0
    connect_attempts_per_5min: Annotated[int, Field(gt=0, le=300)] = 250  # the exchange refuses past 300
    backfill_concurrency: Annotated[int, Field(gt=0)] = 4
    #: how long add_* waits for the exchange to acknowledge new streams before answering "pending"
    subscribe_wait_s: Annotated[float, Field(ge=0)] = 3.0
    cache_prefix: str = DEFAULT_PREFIX
    worker_id: Annotated[str, Field(min_length=1)] = "data-agent-1"
    #: a symbol is checked against the exchange's REST API before it is added
    verify_symbols: bool = True
    #: REST request weight spent per minute at most: 80 % of Binance's 6,000 per IP, the rest left to
    #: the IP's other clients (the exchange's X-MBX-USED-WEIGHT-1M header counts them too)
    rest_weight_per_min: Annotated[int, Field(gt=0)] = 4800
    #: how often the store is checked against the exchange's clock (and at start, always)
    clock_check_s: Annotated[float, Field(gt=0)] = 60.0

    @classmethod
    def load(cls) -> IngestConfig:
        """Defaults overridden by ``TACORE_INGEST_<FIELD>`` variables; a bad one is named."""
        try:
            return cls()
        except ValidationError as exc:
            problems = [f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                        for err in exc.errors()]
            raise ConfigError("invalid data agent tuning: " + "; ".join(problems)) from None
