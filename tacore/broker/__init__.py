"""The broker process: client ROUTER, worker ROUTER, queueing, deadlines, dedupe, heartbeats."""

from __future__ import annotations

from tacore.broker.broker import BROKER_METHODS, Broker

__all__ = ["BROKER_METHODS", "Broker"]
