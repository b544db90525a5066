"""The settings a worker process was started with, for handlers that call back into the service.

A flow node (price: ``kline.history``; trade: ``execute.order``) calls the broker as a client, so it
needs the process's endpoints and keys; the worker's entry point records them here once.
"""

from __future__ import annotations

from tacore.settings import Settings, load_settings

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def configured_settings() -> Settings:
    """The settings this worker was started with (loaded from the environment if none were given)."""
    return _settings if _settings is not None else load_settings()
