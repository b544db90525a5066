"""The recorder and the flow scheduler migrate the service's database as ``tacore serve`` starts them
together: on a fresh database every one of several processes migrating at once ends at the newest
revision, none fails with "table already exists" (which made the supervisor restart the loser)."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from tacore.store.migrate import HEAD_REVISION, current_revision, upgrade_schema

_PROCESSES = 6


def _migrate(url: str, index: int, go: Event, results: Any) -> None:
    from tacore.store.request_log import make_engine

    go.wait(60)
    try:
        engine = make_engine(url)
        try:
            upgrade_schema(engine)
            results.put((index, current_revision(engine)))
        finally:
            engine.dispose()
    except Exception as exc:  # reported to the test, which names it
        results.put((index, f"{type(exc).__name__}: {exc}"))


def _migrate_at_once(url: str) -> dict[int, Any]:
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_migrate, args=(url, i, go, results)) for i in range(_PROCESSES)]
    for proc in procs:
        proc.start()
    try:
        time.sleep(2.0)  # every process imported and waiting on the event (the machine may be loaded)
        go.set()
        return dict(results.get(timeout=180) for _ in procs)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def test_processes_migrating_one_fresh_database_at_once_all_end_at_the_head(store_at: str) -> None:
    answers = _migrate_at_once(store_at)
    assert answers == {i: HEAD_REVISION for i in range(_PROCESSES)}, answers


def test_processes_migrating_fresh_sqlite_files_at_once_round_after_round(tmp_path: Path) -> None:
    for round_ in range(2):
        (tmp_path / f"round{round_}").mkdir()
        answers = _migrate_at_once(f"sqlite:///{tmp_path / f'round{round_}' / 'tacore.db'}")
        assert answers == {i: HEAD_REVISION for i in range(_PROCESSES)}, answers
