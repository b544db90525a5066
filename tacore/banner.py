"""What ``tacore serve`` tells the person who started it: one banner once everything answers, and a
closing summary whose every figure says what it counts.

Plain text from plain facts, so both are tested without starting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_RULE = "─" * 78


@dataclass(frozen=True)
class ReadyFacts:
    version: str
    startup_s: float
    client_endpoint: str
    worker_endpoint: str
    events_endpoint: str
    workers: list[str]
    dashboard_url: str | None
    docs_url: str | None
    api_key: bool
    data_dir: str
    log_dir: str
    request_log: str
    candles: str
    data_agent: bool
    symbols: list[str] = field(default_factory=list)
    source: str = ""
    subscriptions_file: str = ""


def ready_banner(facts: ReadyFacts) -> str:
    """The lines printed once, when the broker, every worker, the data agent and the sidecar answer."""
    rows: list[tuple[str, str]] = [
        ("clients", f"{facts.client_endpoint}   try: tacore call health.check"),
        ("workers", f"{facts.worker_endpoint}   {len(facts.workers)} here ({', '.join(facts.workers)}); "
                    "more from any host: tacore worker --connect tcp://THIS_HOST:"
                    f"{facts.worker_endpoint.rsplit(':', 1)[-1]}"),
    ]
    if facts.data_agent:
        rows.append(("events", f"{facts.events_endpoint}   DATA_READY per closed candle (ZeroMQ PUB)"))
    if facts.dashboard_url is not None:
        key = "   (asks for API_KEY)" if facts.api_key else ""
        rows.append(("dashboard", f"{facts.dashboard_url}{key}"))
        rows.append(("API docs", f"{facts.docs_url}"))
    else:
        rows.append(("dashboard", "off (--no-api)"))
    rows.append(("data", f"{facts.data_dir}   candles: {facts.candles}; request log: {facts.request_log}"))
    rows.append(("logs", f"{facts.log_dir}   tacoreservice.log, worker.log, performance.log"))
    if facts.data_agent:
        if facts.symbols:
            listed = ", ".join(facts.symbols[:12]) + (f" and {len(facts.symbols) - 12} more"
                                                      if len(facts.symbols) > 12 else "")
            rows.append(("streaming", f"{listed} ({len(facts.symbols)} symbols) from {facts.source}"))
        else:
            rows.append(("streaming", f"nothing yet (kline.add_symbols adds some) from {facts.source}"))
        rows.append(("", f"subscriptions persist across restarts in {facts.subscriptions_file}"))
    width = max(len(name) for name, _ in rows)
    lines = [_RULE, f" TACore {facts.version} is ready ({facts.startup_s:.1f} s)"]
    lines += [f"   {name.ljust(width)}   {text}" for name, text in rows]
    lines += [" Ctrl-C (or SIGTERM) stops it in order: new requests refused, the rest answered, then exit.", _RULE]
    return "\n".join(lines)


def _totals(methods: Mapping[str, Mapping[str, Any]]) -> tuple[int, int, int]:
    count = sum(int(m.get("count", 0)) for m in methods.values())
    success = sum(int(m.get("success", 0)) for m in methods.values())
    return count, success, count - success


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def closing_summary(status: Mapping[str, Any] | None, metrics: Mapping[str, Any] | None, *, uptime_s: float,
                    stop_s: float, restarts: Mapping[str, int]) -> str:
    """What the service did, each figure with what it counts (printed after an orderly stop)."""
    lines = [f"TACore stopped after {_duration(uptime_s)} (the orderly stop took {stop_s:.1f} s):"]
    if status is None or metrics is None:
        lines.append("  the broker never answered, so there are no request figures")
    else:
        c: Mapping[str, int] = status.get("counters", {})
        user, user_ok, user_err = _totals(metrics.get("methods", {}))
        internal, _, _ = _totals(metrics.get("internal_methods", {}))
        lines += [
            f"  requests answered     {user:,} from clients ({user_ok:,} succeeded, {user_err:,} answered with an "
            f"error); {internal:,} more were TACore's own (sidecar polling, start-up checks)",
            f"  past their deadline   {c.get('timeout_dispatched', 0):,} answered TIMEOUT while a worker ran them, "
            f"{c.get('cancelled', 0):,} cancelled (broker.cancel)",
            f"  never run             {c.get('timeout', 0):,} passed their deadline in the queue, "
            f"{c.get('busy', 0):,} refused BUSY (queue full), {c.get('refused_stopping', 0):,} refused while "
            "stopping",
            f"  rejected              {c.get('invalid_request', 0):,} unreadable (INVALID_REQUEST), "
            f"{c.get('unknown_method', 0):,} for a method no worker serves (UNKNOWN_METHOD)",
            f"  workers lost          {c.get('worker_lost', 0):,} requests lost with a worker that died "
            f"(WORKER_LOST), {c.get('redispatched', 0):,} re-run on another worker (idempotent methods)",
            f"  retries               {c.get('deduped', 0):,} repeated request_ids answered without running twice",
            f"  replies undelivered   {c.get('reply_undeliverable', 0):,} (the client had gone)",
        ]
        shipped = (status.get("request_log") or {})
        if shipped:
            lines.append(f"  request log           {int(shipped.get('shipped', 0)):,} rows sent to the recorder, "
                         f"{int(shipped.get('dropped', 0)):,} dropped (backlog over REQUEST_LOG_BUFFER)")
    if restarts:
        lines.append("  restarts              " + ", ".join(f"{name} {n}x" for name, n in sorted(restarts.items()))
                     + " (a process that exited was started again)")
    else:
        lines.append("  restarts              none (no process exited on its own)")
    return "\n".join(lines)
