"""Response and body models: they document every endpoint in the OpenAPI schema at ``/docs``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

State = Literal["up", "degraded", "down", "not_configured", "unknown"]


class Problem(BaseModel):
    detail: str
    component: str | None = None


class ComponentState(BaseModel):
    """One dependency as ``tacore.health`` assessed it (``unknown`` only while the broker does not answer)."""

    model_config = ConfigDict(extra="allow")
    status: State
    reason: str


class HealthReply(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="healthy: everything up; degraded: serving, but a dependency is degraded or down; "
                    "unhealthy: requests cannot be served (answered 503)")
    components: dict[str, ComponentState] = Field(
        description="broker, workers, data_agent, recorder, database, cache, candle_store, disk")
    checked_at: float = Field(description="epoch seconds of this answer")
    assessed_at: float | None = Field(description="epoch seconds when the broker assessed the states")


class LogEntry(BaseModel):
    id: int
    request_id: str | None
    method: str
    status: str
    error_code: str | None
    worker_id: str | None
    priority: int
    queue_ms: float
    processing_ms: float
    total_ms: float
    received_at: float = Field(description="epoch seconds")
    finished_at: float = Field(description="epoch seconds")
    internal: bool = Field(False, description="TACore's own call (the sidecar's polling, the scheduler's)")
    params: dict[str, Any] | None = Field(None, description="the call's params, secrets (keys, secrets, passwords, "
                                                            "signatures, tokens) as `***`; null on older rows")
    error_message: str | None = Field(None, description="the error's message, for an error")


class LogPage(BaseModel):
    total: int = Field(description="rows matching the filters, over all pages")
    limit: int
    offset: int
    items: list[LogEntry]


class CurrentRequest(BaseModel):
    request_id: str | None
    method: str
    since: float


class WorkerInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    worker_id: str
    pid: int | None
    host: str | None
    kind: str
    state: Literal["idle", "busy", "dead"]
    methods: list[str]
    served: int
    failed: int
    last_heartbeat: float
    heartbeat_age_s: float
    current: list[CurrentRequest]
    cpu_percent: float | None = None
    rss_bytes: int | None = None


class WorkersReply(BaseModel):
    snapshot_age_s: float | None
    live: int
    by_state: dict[str, int]
    workers: list[WorkerInfo]


class MethodStatsRow(BaseModel):
    method: str
    count: int
    success: int
    error: int
    success_rate: float | None
    avg_ms: float | None
    avg_queue_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps_1m: float | None = None
    errors: dict[str, int]
    workers: int | None = None
    idempotent: bool | None = None


class MethodsReply(BaseModel):
    snapshot_age_s: float | None
    methods: list[MethodStatsRow]


class Summary(BaseModel):
    """The seed's monitoring view: totals, success rate, response times, throughput, cache, resources."""

    model_config = ConfigDict(extra="allow")
    requests_total: int
    success_total: int
    error_total: int
    success_rate: float | None
    avg_response_ms: float | None
    p50_response_ms: float | None
    p95_response_ms: float | None
    p99_response_ms: float | None
    requests_per_second_1m: float | None
    cache_hit_rate: float | None
    cpu_percent: float | None
    memory_percent: float | None
    service: dict[str, Any]
    system: dict[str, Any]
    cache: dict[str, float | None]
    queue_depth: int
    inflight: int
    live_workers: int
    uptime_s: float
    snapshot_age_s: float | None
    targets: dict[str, dict[str, Any]] = Field(
        description="the seed's key indicators: p95 < 100 ms, CPU < 80 %, memory < 85 %, cache hit rate > 90 %")


# -- the seed's Data Agent API ------------------------------------------------------------------
class Pong(BaseModel):
    status: Literal["ok"]
    message: str


class ConnectionCount(BaseModel):
    connection_count: int


class ConnectionList(BaseModel):
    model_config = ConfigDict(extra="allow")
    connections: list[dict[str, Any]]
    count: int


class SymbolList(BaseModel):
    model_config = ConfigDict(extra="allow")
    symbols: list[str]
    count: int


class AgentStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    connection_count: int
    symbols: list[str]


#: A symbol as the data agent takes it (case-insensitive; it upper-cases): 1-20 letters or digits and an optional
#: share class after a dot (BTCUSDT, AAPL, BRK.B); workers.ingest.normalise.SYMBOL_RE.
SYMBOL_PATTERN = r"^[A-Za-z0-9]{1,20}([.][A-Za-z]{1,2})?$"
Interval = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]


class StreamBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"symbol": "BTCUSDT", "interval": "1m"}})
    symbol: str = Field(pattern=SYMBOL_PATTERN, description="e.g. BTCUSDT")
    interval: Interval


class SymbolsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"symbols": ["BTCUSDT", "ETHUSDT"]}})
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] = Field(min_length=1, max_length=500)


class CommandReply(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    message: str | None = None


class AddSymbolsReply(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    results: list[Any]
    current_status: dict[str, Any]
    summary: dict[str, Any]
