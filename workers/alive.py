"""Liveness files: how a container tells, without calling the broker, that its workers are registered.

With ``WORKER_ALIVE_DIR`` set, each worker process touches ``DIR/<worker_id>`` whenever a heartbeat from
the broker reaches it (at most once per heartbeat interval). The broker sends heartbeats only to the
workers it has registered, so a fresh file means: this worker's key was accepted, its READY was taken,
and the broker heard from it within a heartbeat. ``tacore worker-health`` (a compose healthcheck) reads
the files; it needs no client key, so a worker host never holds one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from tacore.errors import ConfigError

log = logging.getLogger("tacore.worker")


class AliveMark:
    """Touches one worker's file; cheap enough to call on every heartbeat (it writes once per interval)."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self._touched_at = float("-inf")
        self._failed = False

    def touch(self, now: float) -> None:
        if now - self._touched_at < self.interval_s:
            return
        self._touched_at = now
        try:
            self.path.touch()
        except OSError as exc:
            if not self._failed:  # say it once; the healthcheck will say the rest
                log.error("cannot write the liveness file %s: %s", self.path, exc)
            self._failed = True

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class AliveReport:
    healthy: bool
    lines: list[str]


def prepare(directory: Path) -> None:
    """Make the directory and drop files of an earlier run (a worker id that is gone would stay stale)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            if stale.is_file():
                stale.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"WORKER_ALIVE_DIR: cannot use {directory}: {exc.strerror or exc}") from None


def check(directory: Path, max_age_s: float, now: float | None = None) -> AliveReport:
    """Healthy when there is at least one worker file and every one is younger than ``max_age_s``."""
    now = time.time() if now is None else now
    try:
        files = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        return AliveReport(False, [f"no liveness files: {directory}: {exc.strerror or exc}"])
    if not files:
        return AliveReport(False, [f"no worker has heard the broker yet (nothing in {directory})"])
    lines, healthy = [], True
    for path in files:
        age = now - path.stat().st_mtime
        fresh = age <= max_age_s
        healthy &= fresh
        lines.append(f"{path.name}: broker heard {age:.1f} s ago{'' if fresh else f' (over {max_age_s:.0f} s)'}")
    return AliveReport(healthy, lines)
