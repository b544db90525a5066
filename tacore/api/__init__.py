"""The monitoring sidecar: a FastAPI app over the broker's status, the request log and the data agent."""

from __future__ import annotations

from tacore.api.app import create_app

__all__ = ["create_app"]
