"""The broker process's garbage-collector settings: its start-up heap set aside, young collections rare.

Measured in the broker process under ``bench_broker.py`` load on a 2 vCPU AMD EPYC guest (a
``gc.callbacks`` probe): CPython's defaults ran a young collection every 700 net allocations, a
middle one every tenth of those, and a full one whenever the objects promoted since the last full
one reached a quarter of the old heap. The old heap is mostly what imports left (settings models,
pyzmq, SQLAlchemy's request-trace tables...), so each full collection walked it all: 40-50 ms with
the broker's loop stopped, every few seconds under load, and a young one cost 0.2 ms.

``settle()``, called once the broker is constructed (imports done, sockets bound), collects once,
then freezes what is left (``gc.freeze``: those objects are never walked again; nothing there is
garbage-in-waiting, start-up is over) and raises the young threshold: the hot path's objects (a
``Pending``, its envelope, a heap entry) die by reference counting within a request, so what
triggers a collection is only the net growth of live objects, e.g. a queue filling up; a higher
threshold walks those in fewer, larger steps. Cycles are still collected: the collector stays on.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("tacore.broker")

#: Net new container objects before a young collection (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


def settle() -> int:
    """Collect once, freeze the surviving start-up heap, raise the young threshold; returns the frozen count."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    frozen = gc.get_freeze_count()
    log.debug("broker heap settled: %d objects frozen, young threshold %d", frozen, YOUNG_THRESHOLD)
    return frozen
