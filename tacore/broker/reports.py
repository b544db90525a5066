"""``broker.report``: the latest facts each process sends about what it uses (see ``tacore.health``).

Bounded like everything a client can send: at most ``MAX_SOURCES`` sources, each keeping only its
latest report, forgotten ``KEEP_S`` after it last reported.
"""

from __future__ import annotations

import time
from typing import Any

from tacore.errors import InvalidParams
from tacore.health import Report

MAX_SOURCES = 64
MAX_SOURCE_LENGTH = 128
KEEP_S = 600.0


class ReportBoard:
    def __init__(self) -> None:
        self._reports: dict[str, Report] = {}

    def accept(self, params: dict[str, Any]) -> dict[str, Any]:
        """Keep ``params["facts"]`` as the latest from ``params["source"]``; InvalidParams when malformed."""
        source, facts = params.get("source"), params.get("facts")
        problems = []
        if not isinstance(source, str) or not 0 < len(source) <= MAX_SOURCE_LENGTH:
            problems.append({"field": "source", "message": f"a string of 1 to {MAX_SOURCE_LENGTH} characters"})
        if not isinstance(facts, dict):
            problems.append({"field": "facts", "message": "an object"})
        if problems or not isinstance(source, str) or not isinstance(facts, dict):
            raise InvalidParams("invalid params for broker.report", details=problems)
        now = time.time()
        self.prune(now)
        if source not in self._reports and len(self._reports) >= MAX_SOURCES:
            oldest = min(self._reports.values(), key=lambda r: r.received_at)
            del self._reports[oldest.source]
        self._reports[source] = Report(source, now, facts)
        return {"accepted": True, "received_at": round(now, 3)}

    def prune(self, now: float) -> None:
        for source in [s for s, r in self._reports.items() if now - r.received_at > KEEP_S]:
            del self._reports[source]

    def current(self) -> list[Report]:
        return list(self._reports.values())

    def latest(self, source: str) -> Report | None:
        return self._reports.get(source)
