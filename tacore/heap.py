"""Garbage-collector settings for TACore's request-serving processes: the start-up heap set aside.

Measured with a ``gc.callbacks`` probe under ``bench_broker.py`` load on a 2 vCPU AMD EPYC guest:
with CPython's defaults the broker ran a young collection every 700 net allocations (0.2 ms each),
a middle one every tenth of those, and a full one whenever the objects promoted since the last full
one reached a quarter of the old heap. The old heap is mostly what start-up left (settings models,
pyzmq, SQLAlchemy's tables, a worker's method registry and pydantic models): each full collection
walked it all, 40-50 ms in the broker and longer in a worker, its loop stopped meanwhile, every few
seconds under load (the broker's request-log records, held for up to 200 ms, were what grew; they
are bytes now, see ``tacore.broker.records``).

``settle()``, called once a process is set up (imports done, sockets bound) and before it serves,
freezes what is there (``gc.freeze``: never walked again) and raises the young threshold. It does
not collect first: that took 70 ms in the broker and more in a worker, added to every start and
restart on a busy machine, for the few cycles start-up leaves (full collections ran during the
imports, as the probe saw; what is left stays, once). The threshold: a request's objects die by
reference counting before the next one, so only net growth of live objects (a queue filling up, a cache) triggers a
collection, and a higher threshold walks that in fewer steps. Cycles are still collected.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("tacore.heap")

#: Net new container objects before a young collection (CPython's default: 700).
YOUNG_THRESHOLD = 20_000


def settle() -> int:
    """Freeze the start-up heap, raise the young threshold; returns the frozen count."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    frozen = gc.get_freeze_count()
    log.debug("heap settled: %d start-up objects frozen, young collections every %d", frozen, YOUNG_THRESHOLD)
    return frozen
