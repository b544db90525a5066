"""Percentiles and rates from the broker's cumulative histograms.

The broker only counts (per method, per latency bucket); everything an operator reads — p95, success
rate, the last second's p99 — is derived here from those counts or from the difference of two
snapshots, so the broker's hot path never sorts or stores a latency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def histogram_quantile(q: float, bounds_ms: Sequence[float], counts: Sequence[int]) -> float | None:
    """The ``q`` quantile (0..1) of a histogram, linearly interpolated inside its bucket.

    ``counts`` has one entry per upper bound in ``bounds_ms`` plus a last one for +Inf. Like
    Prometheus' ``histogram_quantile``, a rank in the +Inf bucket answers the last finite bound.
    Returns None for an empty histogram.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within 0..1, got {q}")
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            if index >= len(bounds_ms):
                return float(bounds_ms[-1]) if bounds_ms else None
            lower = 0.0 if index == 0 else float(bounds_ms[index - 1])
            upper = float(bounds_ms[index])
            return lower + (upper - lower) * max(0.0, rank - seen) / count
        seen += count
    return float(bounds_ms[-1]) if bounds_ms else None


def add_counts(histograms: Iterable[Sequence[int]], size: int) -> list[int]:
    """Bucket-wise sum of several histograms of ``size`` buckets."""
    merged = [0] * size
    for counts in histograms:
        for index, count in enumerate(counts[:size]):
            merged[index] += count
    return merged


def diff_counts(new: Sequence[int], old: Sequence[int] | None) -> list[int]:
    """Bucket-wise ``new - old``; never negative (a restarted broker counts from zero again)."""
    if old is None or len(old) != len(new):
        return list(new)
    return [max(0, a - b) for a, b in zip(new, old, strict=True)]


def ratio(part: float, whole: float) -> float | None:
    return None if whole <= 0 else part / whole


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def method_summary(name: str, entry: Mapping[str, Any], bounds_ms: Sequence[float]) -> dict[str, Any]:
    """One row of ``GET /methods`` from one method of ``broker.metrics``."""
    count = int(entry.get("count", 0))
    counts = list(entry.get("latency_counts", []))
    return {
        "method": name,
        "count": count,
        "success": int(entry.get("success", 0)),
        "error": int(entry.get("error", 0)),
        "success_rate": rounded(ratio(float(entry.get("success", 0)), count), 6),
        "avg_ms": rounded(ratio(float(entry.get("latency_sum_ms", 0.0)), count)),
        "avg_queue_ms": rounded(ratio(float(entry.get("queue_sum_ms", 0.0)), count)),
        "p50_ms": rounded(histogram_quantile(0.50, bounds_ms, counts)),
        "p95_ms": rounded(histogram_quantile(0.95, bounds_ms, counts)),
        "p99_ms": rounded(histogram_quantile(0.99, bounds_ms, counts)),
        "errors": dict(entry.get("errors", {})),
    }


def totals(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Service-wide totals and percentiles over every method of a ``broker.metrics`` reply."""
    bounds = list(metrics.get("latency_buckets_ms", []))
    methods: Mapping[str, Mapping[str, Any]] = metrics.get("methods", {})
    count = sum(int(m.get("count", 0)) for m in methods.values())
    success = sum(int(m.get("success", 0)) for m in methods.values())
    latency_sum = sum(float(m.get("latency_sum_ms", 0.0)) for m in methods.values())
    merged = add_counts((m.get("latency_counts", []) for m in methods.values()), len(bounds) + 1)
    return {
        "requests_total": count,
        "success_total": success,
        "error_total": count - success,
        "success_rate": rounded(ratio(success, count), 6),
        "avg_response_ms": rounded(ratio(latency_sum, count)),
        "p50_response_ms": rounded(histogram_quantile(0.50, bounds, merged)),
        "p95_response_ms": rounded(histogram_quantile(0.95, bounds, merged)),
        "p99_response_ms": rounded(histogram_quantile(0.99, bounds, merged)),
    }


#: The seed's key indicators (监控关键指标): what an operator expects, checked on every summary.
TARGETS: dict[str, tuple[str, float]] = {
    "p95_response_ms": ("<", 100.0),
    "cpu_percent": ("<", 80.0),
    "memory_percent": ("<", 85.0),
    "cache_hit_rate": (">", 0.90),
}


def check_targets(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with its value and whether it is met (None when there is no value yet)."""
    out: dict[str, dict[str, Any]] = {}
    for key, (op, limit) in TARGETS.items():
        value = values.get(key)
        met = None if value is None else (value < limit if op == "<" else value > limit)
        out[key] = {"target": f"{op} {limit:g}", "value": value, "met": met}
    return out


def _merge_method(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    errors = dict(a.get("errors", {}))
    for code, n in b.get("errors", {}).items():
        errors[code] = errors.get(code, 0) + int(n)
    size = max(len(a.get("latency_counts", [])), len(b.get("latency_counts", [])))
    return {
        "count": int(a.get("count", 0)) + int(b.get("count", 0)),
        "success": int(a.get("success", 0)) + int(b.get("success", 0)),
        "error": int(a.get("error", 0)) + int(b.get("error", 0)),
        "errors": errors,
        "latency_counts": add_counts((a.get("latency_counts", []), b.get("latency_counts", [])), size),
        "latency_sum_ms": float(a.get("latency_sum_ms", 0.0)) + float(b.get("latency_sum_ms", 0.0)),
        "queue_sum_ms": float(a.get("queue_sum_ms", 0.0)) + float(b.get("queue_sum_ms", 0.0)),
    }


def with_traffic(metrics: Mapping[str, Any], internal: bool) -> Mapping[str, Any]:
    """``broker.metrics`` as the user figures read it.

    The broker counts TACore's own calls (the sidecar's polling, the scheduler's) apart, under
    ``internal_methods``; ``methods`` is user traffic. With ``internal`` the two are added up, so an
    operator can see everything on request; by default the own calls stay out of every figure.
    """
    own: Mapping[str, Mapping[str, Any]] = metrics.get("internal_methods") or {}
    if not internal or not own:
        return metrics
    merged = {name: dict(entry) for name, entry in metrics.get("methods", {}).items()}
    for name, entry in own.items():
        merged[name] = _merge_method(merged.get(name, {}), entry)
    return {**metrics, "methods": merged}
