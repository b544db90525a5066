"""``GET /metrics``: the sampler's last snapshot as Prometheus metric families.

A custom collector rather than live Counter objects: the broker owns the counts and the sidecar only
re-exposes them, so a scrape costs a walk over one dict and no broker round trip. When the broker is
down the scrape still answers, with ``tacore_broker_up 0`` and without the broker's families (the
exporter convention, so an alert can tell "broker down" from "sidecar down").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from tacore.api.broker_link import Sampler
from tacore.api.stats import with_traffic

WORKER_STATES = ("idle", "busy", "dead")

#: kline.status counters re-exposed, by the names the data agent may use for them.
_KLINE_COUNTERS = {
    "tacore_klines_ingested": ("klines ingested by the data agent", ("klines_ingested", "ingested")),
    "tacore_cache_hits": ("price/kline cache hits", ("cache_hits",)),
    "tacore_cache_misses": ("price/kline cache misses", ("cache_misses",)),
}


def find_counter(data: dict[str, Any] | None, names: tuple[str, ...]) -> float | None:
    """A counter from ``kline.status``, at the top level or under ``counters``/``cache``."""
    if not data:
        return None
    for where in (data, data.get("counters"), data.get("cache"), data.get("stats")):
        if isinstance(where, dict):
            for name in names:
                value = where.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
    return None


def cache_counts(data: dict[str, Any] | None) -> tuple[float | None, float | None, float | None]:
    """Cache hits, misses and hit rate from ``kline.status`` (None where the agent does not say)."""
    hits = find_counter(data, ("cache_hits", "hits"))
    misses = find_counter(data, ("cache_misses", "misses"))
    if hits is None or misses is None or hits + misses <= 0:
        return hits, misses, None
    return hits, misses, round(hits / (hits + misses), 6)


class SidecarCollector(Collector):
    """``internal``: the request families count TACore's own calls too (by default user traffic only)."""

    def __init__(self, sampler: Sampler, internal: bool = False) -> None:
        self.sampler = sampler
        self.internal = internal

    def collect(self) -> Iterator[Metric]:
        sampler = self.sampler
        up = sampler.broker_up()
        yield GaugeMetricFamily("tacore_broker_up", "1 when the broker answered the last poll", value=1 if up else 0)
        age = sampler.snapshot_age_s()
        if age is not None:
            yield GaugeMetricFamily("tacore_broker_snapshot_age_seconds", "age of the broker snapshot shown",
                                    value=age)
        timings = GaugeMetricFamily("tacore_sidecar_sampler_milliseconds",
                                    "the sidecar's broker poll: round trip, CPU work, event-loop lag",
                                    labels=["part"])
        for part, value in sampler.timings.items():
            timings.add_metric([part.removesuffix("_ms")], value)
        yield timings
        if up and sampler.status is not None and sampler.metrics is not None:
            yield from self._broker(sampler.status, dict(with_traffic(sampler.metrics, self.internal)))
        yield from self._data_agent()
        yield from self._resources()

    def _broker(self, status: dict[str, Any], metrics: dict[str, Any]) -> Iterator[Metric]:
        yield GaugeMetricFamily("tacore_broker_uptime_seconds", "seconds since the broker started",
                                value=float(status.get("uptime_s", 0.0)))
        yield GaugeMetricFamily("tacore_queue_depth", "requests waiting for a worker",
                                value=float(metrics.get("queue_depth", 0)))
        yield GaugeMetricFamily("tacore_queue_limit", "queue size past which requests get BUSY",
                                value=float(status.get("queue_limit", 0)))
        yield GaugeMetricFamily("tacore_inflight_requests", "requests being run by workers",
                                value=float(metrics.get("inflight", 0)))
        workers = GaugeMetricFamily("tacore_workers", "workers by state (dead ones stay listed 5 minutes)",
                                    labels=["state"])
        by_state = dict.fromkeys(WORKER_STATES, 0)
        for worker in status.get("workers", []):
            state = str(worker.get("state"))
            by_state[state] = by_state.get(state, 0) + 1
        for state, count in by_state.items():
            workers.add_metric([state], count)
        yield workers

        requests = CounterMetricFamily("tacore_requests", "requests answered, by method and outcome",
                                       labels=["method", "status"])
        errors = CounterMetricFamily("tacore_request_errors", "error replies, by method and code",
                                     labels=["method", "code"])
        bounds = [float(b) / 1000.0 for b in metrics.get("latency_buckets_ms", [])]
        duration = HistogramMetricFamily("tacore_request_duration_seconds",
                                         "receipt of a request to its reply, at the broker", labels=["method"])
        for method, entry in sorted(metrics.get("methods", {}).items()):
            requests.add_metric([method, "success"], float(entry.get("success", 0)))
            requests.add_metric([method, "error"], float(entry.get("error", 0)))
            for code, count in sorted(entry.get("errors", {}).items()):
                errors.add_metric([method, code], float(count))
            counts = list(entry.get("latency_counts", []))
            if len(counts) != len(bounds) + 1:
                continue
            cumulative, buckets = 0, []
            for bound, count in zip([*[_fmt(b) for b in bounds], "+Inf"], counts, strict=True):
                cumulative += int(count)
                buckets.append((bound, float(cumulative)))
            duration.add_metric([method], buckets, float(entry.get("latency_sum_ms", 0.0)) / 1000.0)
        yield requests
        yield errors
        yield duration
        events = CounterMetricFamily("tacore_broker_events", "broker counters (received, busy, timeout...)",
                                     labels=["event"])
        for name, value in sorted(status.get("counters", {}).items()):
            events.add_metric([name], float(value))
        yield events
        yield from _request_log(status.get("request_log"))
        yield from _dependencies(status.get("health"))

    def _data_agent(self) -> Iterator[Metric]:
        agent = self.sampler.data_agent()
        if agent["configured"]:
            yield GaugeMetricFamily("tacore_data_agent_up", "1 when a data agent serves kline methods",
                                    value=1 if agent["up"] else 0)
        data = self.sampler.kline_status
        if data is None:
            return
        for name, (doc, keys) in _KLINE_COUNTERS.items():
            value = find_counter(data, keys)
            if value is not None:
                yield CounterMetricFamily(name, doc, value=value)
        connections = data.get("connection_count")
        if isinstance(connections, (int, float)):
            yield GaugeMetricFamily("tacore_kline_connections", "open exchange kline streams",
                                    value=float(connections))

    def _resources(self) -> Iterator[Metric]:
        usage = list(self.sampler.resources.processes.values())
        cpu = CounterMetricFamily("tacore_process_cpu_seconds", "CPU time of each local service process",
                                  labels=["component", "pid"])
        rss = GaugeMetricFamily("tacore_process_resident_memory_bytes", "resident memory of each local process",
                                labels=["component", "pid"])
        for proc in usage:
            cpu.add_metric([proc.component, str(proc.pid)], proc.cpu_seconds)
            rss.add_metric([proc.component, str(proc.pid)], float(proc.rss_bytes))
        yield cpu
        yield rss
        system = self.sampler.resources.system
        if system:
            yield GaugeMetricFamily("tacore_system_cpu_percent", "host CPU use", value=system["cpu_percent"])
            yield GaugeMetricFamily("tacore_system_memory_percent", "host memory use",
                                    value=system["memory_percent"])


DEPENDENCY_STATES = ("up", "degraded", "down", "not_configured")


def _request_log(state: Any) -> Iterator[Metric]:
    """What became of the request records: written, dropped, still waiting; failed writes."""
    if not isinstance(state, dict):
        return
    yield CounterMetricFamily("tacore_request_log_written", "request records written to the database",
                              value=float(state.get("written") or 0))
    yield CounterMetricFamily("tacore_request_log_dropped", "request records dropped: the database was away "
                              "longer than REQUEST_LOG_BUFFER covers", value=float(state.get("dropped") or 0))
    yield CounterMetricFamily("tacore_request_log_write_failures", "failed writes of the request log",
                              value=float(state.get("write_failures") or 0))
    yield GaugeMetricFamily("tacore_request_log_buffered_records", "request records waiting to be written "
                            "(the recorder's buffer and the broker's backlog)",
                            value=float((state.get("buffered") or 0) + (state.get("pending") or 0)))


def _dependencies(health: Any) -> Iterator[Metric]:
    """One series per dependency and state, 1 for the current one (the states of /health)."""
    dependencies = health.get("dependencies") if isinstance(health, dict) else None
    if not isinstance(dependencies, dict):
        return
    family = GaugeMetricFamily("tacore_dependency_state", "1 for each dependency's current state (see /health)",
                               labels=["dependency", "state"])
    for name, entry in sorted(dependencies.items()):
        current = entry.get("status") if isinstance(entry, dict) else None
        for state in DEPENDENCY_STATES:
            family.add_metric([name, state], 1.0 if current == state else 0.0)
    yield family


def _fmt(bound: float) -> str:
    return repr(round(bound, 9))


def build_registry(sampler: Sampler, *, internal: bool = False) -> CollectorRegistry:
    """The sidecar's registry: the service's families plus the sidecar's own ``process_*``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SidecarCollector(sampler, internal))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
