"""Methods for ``bench_broker.py --non-idempotent``: health.check's work, declared not idempotent.

A pool serves them with ``WORKER_REGISTRY=benchmarks.bench_methods:build_registry``; each call then
pays for its durable idempotency record (claimed before the handler, the reply stored after).
"""

from __future__ import annotations

from typing import Any

from workers.methods.health import HealthCheckParams, health_check
from workers.registry import CallContext, MethodRegistry


def build_registry() -> MethodRegistry:
    from workers.methods import default_registry

    registry = default_registry()

    @registry.method("bench.health_once")
    def health_once(params: HealthCheckParams, ctx: CallContext) -> dict[str, Any]:
        """health.check, not idempotent: each request_id is claimed once in the idempotency store."""
        return health_check(params, ctx)

    return registry
