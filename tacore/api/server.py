"""Process entry point of the sidecar: uvicorn on ``API_BIND_HOST:API_PORT`` until SIGTERM or SIGINT.

uvicorn installs its own SIGTERM/SIGINT handlers: it stops accepting, finishes the requests it holds,
runs the app's shutdown (the sampler and the broker client close). It then re-raises the signal to the
handler that was there before it; a no-op one makes that a plain return (exit status 0), as the entry
point contract of ``tacore serve`` asks.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from tacore.api.app import create_app
from tacore.settings import Settings

log = logging.getLogger("tacore.api")


def run(settings: Settings, *, migrate: bool = True) -> None:
    """Serve until SIGTERM/SIGINT; ``migrate=False`` under ``tacore serve``, whose recorder owns the schema."""
    from tacore.logconfig import configure_logging

    configure_logging(settings, "api")
    host = settings.api_bind_host
    if settings.api_key is None:
        log.warning("API_KEY is not set: the monitoring sidecar binds to %s only (loopback) and asks for no key",
                    host)
        if settings.api_host not in (None, "127.0.0.1", "localhost"):
            log.warning("API_HOST=%s ignored: without API_KEY the sidecar never leaves loopback", settings.api_host)
    else:
        log.info("monitoring sidecar requires the X-API-Key header (except /health and /ping)")
    log.info("monitoring sidecar on http://%s:%d (dashboard at /, API docs at /docs), broker %s",
             host, settings.api_port, settings.client_endpoint)
    config = uvicorn.Config(create_app(settings, migrate=migrate), host=host, port=settings.api_port, log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            server_header=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _after_shutdown)
    uvicorn.Server(config).run()
    log.info("monitoring sidecar stopped")


def _after_shutdown(signum: int, _frame: FrameType | None) -> None:
    """Receives the signal uvicorn re-raises once it has shut down: nothing left to do."""
