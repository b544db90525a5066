"""Settings for every TACore process: environment > YAML file > defaults, validated once at start-up.

Every field is also an environment variable of the same name in upper case (``WORKER_COUNT``,
``ZMQ_FRONTEND_PORT``...), except the two the seed prefixes: ``TACORESERVICE_ENV`` and
``TACORESERVICE_LOG_LEVEL``. Settings are frozen and reject unknown keys, so a typo in
``config/config.yaml`` stops start-up instead of being ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from tacore.errors import ConfigError

CONFIG_ENV_VAR = "TACORE_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/config.yaml")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _config_path() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        return Path(explicit)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


class Settings(BaseSettings):
    """All of TACore's settings; one flat namespace so each maps to one environment variable."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", case_sensitive=False, populate_by_name=True)

    # -- service ---------------------------------------------------------------------------------
    env: Literal["development", "production", "test"] = Field(
        "development", validation_alias=AliasChoices("TACORESERVICE_ENV", "env")
    )
    log_level: LogLevel = Field("INFO", validation_alias=AliasChoices("TACORESERVICE_LOG_LEVEL", "log_level"))
    log_dir: Path = Path("logs")
    logging_config: Path = Path("config/logging.yaml")
    #: markets, accounts and risk limits; the packaged defaults when the file does not exist
    trading_config: Path = Path("config/trading_config.yaml")
    data_dir: Path = Path("data")
    #: below this much free space on DATA_DIR the disk counts as degraded in the health states
    data_dir_min_free_mb: int = Field(1024, ge=0)

    # -- broker ----------------------------------------------------------------------------------
    bind_address: str = "127.0.0.1"
    zmq_frontend_port: int = Field(5555, ge=1, le=65535)
    zmq_backend_port: int = Field(5556, ge=1, le=65535)
    max_request_bytes: int = Field(1024 * 1024, ge=256)
    queue_limit: int = Field(10_000, ge=1)
    queue_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    default_timeout_ms: int = Field(30_000, ge=1)
    heartbeat_interval_ms: int = Field(1_000, ge=50)
    heartbeat_liveness: int = Field(3, ge=2)
    worker_credit: int = Field(16, ge=1, le=64)
    broker_spin_us: int = Field(250, ge=0, le=10_000)
    dedupe_ttl_s: float = Field(300.0, ge=0)
    dedupe_max_entries: int = Field(100_000, ge=0)

    # -- authentication (docs/security.md) ---------------------------------------------------------
    #: CurveZMQ on both broker ports: only keys on the allow-list in KEYS_DIR connect, each with its role
    broker_curve: bool = False
    #: let the broker bind beyond loopback without keys (anyone who reaches the ports is trusted)
    broker_insecure: bool = False
    #: key files and the allow-list; default DATA_DIR/keys
    keys_dir: Path | None = None
    #: the broker's public key for clients and workers: Z85 text or a ``server.key`` file
    #: (default: the one in the key file, else KEYS_DIR/server.key)
    server_key: str | None = None
    #: this process's key as a client (``tacore call``, the sidecar): a ``.key_secret`` file or a key name in
    #: KEYS_DIR; with BROKER_CURVE on and none set, the local ``local-admin`` key
    client_key: str | None = None
    #: this process's key as a worker (the pool, ``tacore worker``, the data agent): as CLIENT_KEY; default
    #: ``local-worker`` with BROKER_CURVE on
    worker_key: str | None = None

    # -- workers ---------------------------------------------------------------------------------
    worker_count: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    broker_connect: str | None = None
    reconnect_initial_ms: int = Field(250, ge=10)
    reconnect_max_ms: int = Field(8_000, ge=10)
    #: ``module:function`` returning the MethodRegistry a pool worker serves
    worker_registry: str = "workers.methods:default_registry"
    #: a handler running this long hands the requests waiting behind it at its worker back to the broker
    worker_handback_ms: int = Field(100, ge=10)
    #: a pool worker whose handler still runs this long past its deadline (or after SIGTERM) is recycled
    worker_recycle_grace_ms: int = Field(5_000, ge=50)
    #: each worker process touches DIR/<worker_id> when a broker heartbeat reaches it (registered and heard):
    #: what ``tacore worker-health`` reads, a container healthcheck that needs no client key
    worker_alive_dir: Path | None = None
    #: where non-idempotent requests are claimed (SQLAlchemy URL); unset: the service's server database
    #: (DATABASE_URL), or SQLite ``idempotency.db`` beside DATABASE_PATH
    idempotency_url: str | None = None
    idempotency_ttl_s: float = Field(86_400.0, gt=0)

    # -- request log -----------------------------------------------------------------------------
    database_path: Path = Path("data/tacoreservice.db")
    database_url: str | None = None
    recorder_port: int = Field(5558, ge=1, le=65535)
    request_log_batch_size: int = Field(1_000, ge=1)
    request_log_flush_ms: int = Field(200, ge=10)
    request_log_buffer: int = Field(200_000, ge=100)
    #: run the recorder under SCHED_IDLE: its batch writes never delay a request (they took a core
    #: for milliseconds every flush and showed up in the broker's p99); under sustained saturation
    #: the log lags, bounded by REQUEST_LOG_BUFFER
    recorder_idle_priority: bool = True

    # -- orders ----------------------------------------------------------------------------------
    #: where the order ledger lives (SQLAlchemy URL); unset: DATABASE_URL's server, else SQLite
    #: ``orders.db`` beside DATABASE_PATH
    orders_database_url: str | None = None
    #: SQLite's sync at each ledger commit: NORMAL (WAL; survives any process's death) or FULL (also an
    #: OS crash or power loss, one fsync per group commit)
    orders_sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: a latest price known for longer than this is asked of the data agent again before an order uses it
    orders_price_max_age_ms: int = Field(1_000, ge=0)
    #: how often the orders resting at a remote venue (Binance) are asked for, to record their fills
    orders_remote_poll_ms: int = Field(5_000, ge=100, le=600_000)
    #: the key pair of ``venue: binance`` accounts whose ``options`` name no other variables (secrets:
    #: never logged); the REST API is EXCHANGE_REST_URL's (the exchange, its testnet or the simulator)
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None

    # -- cache -----------------------------------------------------------------------------------
    redis_url: str | None = None

    # -- market data -----------------------------------------------------------------------------
    data_agent_max_symbol: int = Field(100, ge=1)
    exchange_ws_url: str = "wss://stream.binance.com:9443"
    exchange_rest_url: str = "https://api.binance.com"
    clickhouse_url: str | None = None
    events_port: int = Field(5557, ge=1, le=65535)
    #: candles of history each stream holds, fetched when it is added (0: none, start at the live stream);
    #: HISTORY_DEPTH_PER_INTERVAL overrides it per interval, e.g. '{"1m": 5000, "1d": 365}'
    history_depth: int = Field(1000, ge=0)
    history_depth_per_interval: dict[str, int] = Field(default_factory=dict)
    price_ttl_s: int = Field(300, ge=1)
    #: symbols subscribed (all 7 intervals) at start, on top of the stored subscription set
    data_agent_symbols: list[str] = Field(default_factory=list)
    #: US equities: Alpaca market-data API v2 (key pair secret, never logged; unset = no US data)
    alpaca_api_key_id: str | None = None
    alpaca_api_secret_key: SecretStr | None = None
    alpaca_data_url: str = "https://data.alpaca.markets"  # the agent appends /v2/stocks/bars
    alpaca_stream_url: str = "wss://stream.data.alpaca.markets"  # the agent appends /v2/<ALPACA_FEED>
    alpaca_feed: Literal["iex", "sip"] = "iex"  # iex: Alpaca's free plan; sip: the consolidated tape

    # -- AI analysis: any OpenAI-compatible Chat Completions endpoint (tacore llm-sim in the demo) --
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_timeout_s: float = Field(30.0, gt=0, le=600)
    #: retries after a 429, 5xx, timeout or lost connection (invalid output is retried once, apart)
    llm_max_retries: int = Field(2, ge=0, le=10)
    #: longest wait a 429's Retry-After may impose before a retry; longer ones answer UNAVAILABLE
    llm_max_retry_wait_s: float = Field(10.0, ge=0, le=600)

    # -- flows (docs/flows.md) ----------------------------------------------------------------------
    #: tasks in flight at once across every flow (the agent pool); 0: four per pool worker
    flow_slots: int = Field(0, ge=0, le=100_000)
    #: a queued task gains one priority level per this many seconds waited, so low priorities still run
    flow_aging_s: float = Field(10.0, ge=0)
    #: finished cycles (their tasks and logs) are deleted after this many days; 0 keeps them
    flow_retention_days: float = Field(30.0, ge=0)

    # -- monitoring sidecar ----------------------------------------------------------------------
    api_host: str | None = None
    api_port: int = Field(8000, ge=1, le=65535)
    api_key: str | None = None

    @field_validator("redis_url", "database_url", "clickhouse_url", "api_key", "broker_connect", "api_host",
                     "idempotency_url", "alpaca_api_key_id", "alpaca_api_secret_key", "keys_dir", "server_key",
                     "client_key", "worker_key", "llm_base_url", "llm_api_key", "llm_model", "worker_alive_dir",
                     "orders_database_url", "binance_api_key", "binance_api_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("history_depth_per_interval")
    @classmethod
    def _known_intervals(cls, value: dict[str, int]) -> dict[str, int]:
        from tacore.intervals import INTERVALS

        bad = [f"{k}={v}" for k, v in value.items() if k not in INTERVALS or v < 0]
        if bad:
            raise ValueError(f"{', '.join(bad)}: intervals are {', '.join(INTERVALS)}, depths >= 0")
        return value

    @field_validator("log_level", "orders_sqlite_synchronous", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ports_distinct(self) -> Settings:
        ports = {
            "ZMQ_FRONTEND_PORT": self.zmq_frontend_port,
            "ZMQ_BACKEND_PORT": self.zmq_backend_port,
            "EVENTS_PORT": self.events_port,
            "RECORDER_PORT": self.recorder_port,
            "API_PORT": self.api_port,
        }
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                raise ValueError(f"{name} and {seen[port]} are both {port}")
            seen[port] = name
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_path()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    # -- derived ---------------------------------------------------------------------------------
    @property
    def frontend_endpoint(self) -> str:
        return f"tcp://{self.bind_address}:{self.zmq_frontend_port}"

    @property
    def backend_endpoint(self) -> str:
        return f"tcp://{self.bind_address}:{self.zmq_backend_port}"

    @property
    def events_endpoint(self) -> str:
        return f"tcp://{self.bind_address}:{self.events_port}"

    @property
    def recorder_endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.recorder_port}"

    @property
    def client_endpoint(self) -> str:
        """Where a local client connects (a wildcard bind is reached on loopback)."""
        host = "127.0.0.1" if self.bind_address in ("0.0.0.0", "*") else self.bind_address
        return f"tcp://{host}:{self.zmq_frontend_port}"

    @property
    def report_endpoint(self) -> str:
        """Where a worker process sends its health reports (``broker.report``, a client request): the broker's
        frontend, on the host ``BROKER_CONNECT`` names when it is set (a data agent on another host)."""
        if self.broker_connect and self.broker_connect.startswith("tcp://") and ":" in self.broker_connect[6:]:
            return f"{self.broker_connect.rsplit(':', 1)[0]}:{self.zmq_frontend_port}"
        return self.client_endpoint

    @property
    def worker_endpoint(self) -> str:
        if self.broker_connect:
            return self.broker_connect
        host = "127.0.0.1" if self.bind_address in ("0.0.0.0", "*") else self.bind_address
        return f"tcp://{host}:{self.zmq_backend_port}"

    @property
    def keys_path(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def idempotency_store_url(self) -> str:
        from tacore.store.idempotency import store_url

        return store_url(self.database_url, self.database_path, self.idempotency_url)

    @property
    def orders_store_url(self) -> str:
        from tacore.trading.ledger.schema import ledger_url

        return ledger_url(self.orders_database_url, self.database_url, self.database_path)

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb:///{self.data_dir.resolve()}/klines"

    @property
    def api_bind_host(self) -> str:
        """Without an API key the sidecar stays on loopback, whatever was asked."""
        if self.api_key is None:
            return "127.0.0.1"
        return self.api_host or self.bind_address


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, turning pydantic's error into one that names each bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]) or "settings"
            problems.append(f"{name.upper()}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
