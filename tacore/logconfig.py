"""Configure logging once per process from ``config/logging.yaml`` (or the packaged default)."""

from __future__ import annotations

import logging
import logging.config
from importlib import resources
from typing import Any

import yaml

from tacore.settings import Settings


def configure_logging(settings: Settings, process: str) -> None:
    """File handlers' names are made relative to ``LOG_DIR``; the level comes from ``TACORESERVICE_LOG_LEVEL``."""
    import multiprocessing

    multiprocessing.current_process().name = process
    if settings.logging_config.is_file():
        text = settings.logging_config.read_text()
    else:
        text = resources.files("tacore").joinpath("defaults/logging.yaml").read_text()
    config: dict[str, Any] = yaml.safe_load(text)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    for handler in config.get("handlers", {}).values():
        if "filename" in handler:
            handler["filename"] = str(settings.log_dir / handler["filename"])
    config.setdefault("root", {})["level"] = settings.log_level
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
