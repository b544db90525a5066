"""Method handlers, one module per method family; ``default_registry`` is what a pool worker serves."""

from __future__ import annotations

from workers.registry import MethodRegistry


def default_registry() -> MethodRegistry:
    from workers.methods import health

    registry = MethodRegistry()
    registry.include(health.registry)
    return registry
