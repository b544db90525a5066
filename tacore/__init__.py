"""TACore: a trading-agent core service (ZeroMQ broker, worker pool, data agent, monitoring sidecar)."""

from __future__ import annotations

from tacore.compiled import verify as _verify_compiled_core

__version__ = "0.1.0"

_verify_compiled_core()
