"""Where the Alpaca feed connects and with which keys (operator settings), and its tunables.

The key pair comes from ``ALPACA_API_KEY_ID`` / ``ALPACA_API_SECRET_KEY``; without both the feed is
*unconfigured*: asking for a US symbol is ``UNAVAILABLE`` saying what to set, and ``kline.status``
shows it, never a silent fallback. Tunables follow from Alpaca's limits and only a faster simulator
needs others, through ``TACORE_INGEST_ALPACA_<FIELD>`` variables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tacore.errors import ConfigError
from tacore.settings import Settings

ENV_PREFIX = "TACORE_INGEST_ALPACA_"
MISSING_KEYS = ("US equities come from Alpaca market data: set ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY "
                "(and ALPACA_DATA_URL / ALPACA_STREAM_URL / ALPACA_FEED for another endpoint or feed)")


@dataclass(frozen=True, slots=True)
class AlpacaAccess:
    key_id: str
    secret_key: str
    data_url: str
    stream_url: str
    feed: str

    @property
    def stream_endpoint(self) -> str:
        return f"{self.stream_url.rstrip('/')}/v2/{self.feed}"

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"AlpacaAccess(key_id={self.key_id!r}, data_url={self.data_url!r}, feed={self.feed!r})"


def alpaca_access(settings: Settings) -> AlpacaAccess | None:
    """The key pair and endpoints, or None when a key is missing."""
    secret = settings.alpaca_api_secret_key
    if not settings.alpaca_api_key_id or secret is None or not secret.get_secret_value():
        return None
    return AlpacaAccess(settings.alpaca_api_key_id, secret.get_secret_value(), settings.alpaca_data_url,
                        settings.alpaca_stream_url, settings.alpaca_feed)


DEFAULT_HISTORY_DEPTH = 1000


def history_depth_of(settings: Settings) -> Callable[[str], int]:
    """Candles of history a new stream fetches per interval: the agent's history-depth settings
    (``HISTORY_DEPTH``, ``HISTORY_DEPTH_PER_INTERVAL``) when this build has them, else 1,000."""
    default = int(getattr(settings, "history_depth", DEFAULT_HISTORY_DEPTH))
    per_interval = dict(getattr(settings, "history_depth_per_interval", {}) or {})

    def depth(interval: str) -> int:
        return int(per_interval.get(interval, default))

    return depth


class AlpacaTuning(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    #: REST requests per minute the feed allows itself (Alpaca's basic plan: 200)
    requests_per_min: Annotated[int, Field(gt=0)] = 190
    #: bars per request (Alpaca allows up to 10,000, counted across the symbols of a request)
    page_limit: Annotated[int, Field(gt=0, le=10_000)] = 10_000
    backfill_concurrency: Annotated[int, Field(gt=0, le=8)] = 2
    #: a bucket's closing aggregate is fetched this long after its last minute arrived (batching symbols)
    close_delay_s: Annotated[float, Field(ge=0)] = 0.2
    #: after "auth failed" / "insufficient subscription" the stream tries again this much later
    auth_retry_s: Annotated[float, Field(gt=0)] = 60.0
    backoff_initial_s: Annotated[float, Field(gt=0)] = 0.5
    backoff_max_s: Annotated[float, Field(gt=0)] = 30.0
    ping_interval_s: Annotated[float, Field(gt=0)] = 20.0

    @classmethod
    def load(cls) -> AlpacaTuning:
        try:
            return cls()
        except ValidationError as exc:
            problems = [f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                        for err in exc.errors()]
            raise ConfigError("invalid Alpaca feed tuning: " + "; ".join(problems)) from None
