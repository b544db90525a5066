"""Several workers opening one fresh idempotency database at the same moment (``tacore serve`` starts its
whole pool at once): every one of them gets a working store, none fails with "table already exists"."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from tacore.store.idempotency import IdempotencyStore, params_hash

_STORES = 8


def _open_and_claim(url: str, index: int, go: Event, results: Any) -> None:
    go.wait(60)
    try:
        store = IdempotencyStore(url)
        try:
            outcome = store.claim(f"order-{index}", "execute.order", params_hash({"i": index}), f"w{index}",
                                  lease_s=30).outcome
        finally:
            store.close()
        results.put((index, outcome))
    except Exception as exc:  # reported to the test, which names it
        results.put((index, f"{type(exc).__name__}: {exc}"))


def _open_at_once(url: str) -> dict[int, str]:
    """Start ``_STORES`` processes, release them together, and collect what each one's first claim said."""
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_open_and_claim, args=(url, i, go, results)) for i in range(_STORES)]
    for proc in procs:
        proc.start()
    try:
        time.sleep(1.5)  # every process imported and waiting on the event (the machine is loaded)
        go.set()
        return dict(results.get(timeout=120) for _ in procs)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def test_stores_opened_at_once_on_one_fresh_database_all_work(store_at: str) -> None:
    answers = _open_at_once(store_at)
    assert answers == {i: "claimed" for i in range(_STORES)}, answers


def test_stores_opened_at_once_on_fresh_sqlite_files_all_work_round_after_round(tmp_path: Path) -> None:
    for round_ in range(3):  # a race: a few rounds on SQLite (production's default), each on a fresh file
        answers = _open_at_once(f"sqlite:///{tmp_path / f'round{round_}' / 'idempotency.db'}")
        assert answers == {i: "claimed" for i in range(_STORES)}, answers
