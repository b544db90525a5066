from __future__ import annotations

from tacore.broker.queue import Pending
from tacore.broker.workers import FAST_METHOD_MS, WorkerRecord, WorkerRegistry


def _worker(name: str, credit: int = 4) -> WorkerRecord:
    return WorkerRecord(name.encode(), name, 1, "h", "worker", frozenset({"fast", "slow"}), frozenset(), credit, 1e9)


def _busy(record: WorkerRecord, slow: bool) -> None:
    item = Pending(1, "r", "x", 5, b"{}", [], 0.0, 0.0, 1e9)
    item.slow = slow
    record.inflight[1] = item
    record.slow_inflight += slow


def test_least_recently_used_worker_with_credit_is_picked_first() -> None:
    registry = WorkerRegistry()
    a, b = _worker("a"), _worker("b")
    registry.add(a)
    registry.add(b)
    registry.observe("fast", 0.1)
    assert registry.pick("fast") is a
    registry.assign(a, Pending(1, "r1", "fast", 5, b"{}", [], 0.0, 0.0, 1e9))
    assert registry.pick("fast") is b
    registry.assign(b, Pending(2, "r2", "fast", 5, b"{}", [], 0.0, 0.0, 1e9))
    assert registry.pick("fast") is a


def test_a_worker_out_of_credit_is_not_picked_until_a_reply_frees_it() -> None:
    registry = WorkerRegistry()
    a = _worker("a", credit=2)
    registry.add(a)
    registry.observe("fast", 0.1)
    registry.assign(a, Pending(1, "r1", "fast", 5, b"{}", [], 0.0, 0.0, 1e9))
    registry.assign(a, Pending(2, "r2", "fast", 5, b"{}", [], 0.0, 0.0, 1e9))
    assert registry.pick("fast") is None
    registry.unassign(a, 1)
    registry.freed(a)
    assert registry.pick("fast") is a


def test_slow_methods_only_go_to_workers_with_nothing_in_flight() -> None:
    registry = WorkerRegistry()
    a, b = _worker("a"), _worker("b")
    registry.add(a)
    registry.add(b)
    registry.observe("fast", FAST_METHOD_MS / 2)
    registry.observe("slow", 500.0)
    _busy(a, slow=False)
    assert registry.pick("slow") is b  # a has credit left, but a slow call must not queue behind its work
    assert registry.pick("fast") is a  # a fast one may
    _busy(b, slow=True)
    assert registry.pick("fast") is a and not registry.can_take(b, "fast")


def test_unknown_methods_count_as_slow_until_measured() -> None:
    registry = WorkerRegistry()
    assert not registry.is_fast("new.method")
    registry.observe("new.method", 0.5)
    assert registry.is_fast("new.method")


def test_removed_worker_leaves_the_method_counts_and_is_remembered_dead() -> None:
    registry = WorkerRegistry()
    a = _worker("a")
    registry.add(a)
    assert registry.servers["fast"] == 1
    registry.remove(a, "heartbeat expired")
    assert registry.servers["fast"] == 0 and registry.pick("fast") is None
    assert [r.worker_id for r in registry.recent_dead(a.dead_at or 0)] == ["a"]


def test_in_flight_count_follows_assign_unassign_and_a_lost_worker() -> None:
    registry = WorkerRegistry()
    a, b = _worker("a"), _worker("b")
    registry.add(a)
    registry.add(b)
    items = [Pending(i, f"r{i}", "fast", 5, b"{}", [], 0.0, 0.0, 1e9) for i in range(3)]
    items[2].slow = True
    registry.assign(a, items[0])
    registry.assign(a, items[1])
    registry.assign(b, items[2])
    assert registry.inflight == 3 and b.slow_inflight == 1
    assert registry.unassign(a, items[0].seq) is items[0]
    assert registry.unassign(a, items[0].seq) is None  # a second reply to the same request changes nothing
    assert registry.inflight == 2
    assert registry.unassign_all(b) == [items[2]]
    assert registry.inflight == 1 and b.slow_inflight == 0 and not b.inflight
