"""The subscription set on disk, so it survives a restart of the data agent.

A small JSON file (``<DATA_DIR>/data-agent/subscriptions.json``), not a ClickHouse table: it must be
readable when storage is down, and it is written rarely (on add/remove), atomically (temp + rename).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from tacore.intervals import INTERVAL_MS
from workers.ingest.normalise import SYMBOL_RE

log = logging.getLogger("tacore.ingest.subscriptions")

Pair = tuple[str, str]


class SubscriptionFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Pair]:
        """Stored (symbol, interval) pairs; entries that no longer validate are skipped and logged."""
        if not self.path.is_file():
            return []
        try:
            raw = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("subscription file %s unreadable (%s); starting from settings only", self.path, exc)
            return []
        pairs: list[Pair] = []
        for item in raw.get("streams", []) if isinstance(raw, dict) else []:
            if (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and SYMBOL_RE.match(item[0]) and item[1] in INTERVAL_MS):
                pairs.append((item[0], item[1]))
            else:
                log.warning("subscription file: bad entry %r skipped", item)
        return pairs

    def save(self, pairs: Iterable[Pair]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"streams": sorted([symbol, interval] for symbol, interval in pairs)}
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)
