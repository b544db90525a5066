"""TACore: a trading-agent core service (ZeroMQ broker, worker pool, data agent, monitoring sidecar)."""

from __future__ import annotations

__version__ = "0.1.0"
