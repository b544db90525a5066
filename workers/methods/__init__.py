"""Method handlers, one module per method family; ``default_registry`` is what a pool worker serves."""

from __future__ import annotations

from workers.registry import MethodRegistry


def default_registry() -> MethodRegistry:
    from workers.methods import flows, health

    registry = MethodRegistry()
    registry.include(health.registry)
    registry.include(flows.node_registry())
    return registry
