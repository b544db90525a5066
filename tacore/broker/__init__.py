"""The broker process: client ROUTER, worker ROUTER, queueing, deadlines, dedupe, heartbeats."""

from __future__ import annotations

from tacore.broker.broker import Broker
from tacore.broker.broker_methods import BROKER_METHODS

__all__ = ["BROKER_METHODS", "Broker"]
