from __future__ import annotations

from tacore.broker.queue import Pending, PendingQueue


def _item(seq: int, method: str = "m", priority: int = 5, deadline: float = 100.0) -> Pending:
    return Pending(seq, f"r{seq}", method, priority, b"{}", [], 0.0, 0.0, deadline)


def test_lower_priority_number_goes_first_then_fifo() -> None:
    queue = PendingQueue(100)
    for seq, priority in [(1, 5), (2, 9), (3, 0), (4, 5), (5, 0)]:
        queue.push(_item(seq, priority=priority))
    order = [queue.pop_for(["m"]).seq for _ in range(5)]  # type: ignore[union-attr]
    assert order == [3, 5, 1, 4, 2]
    assert queue.pop_for(["m"]) is None and len(queue) == 0


def test_a_method_nobody_serves_does_not_block_others() -> None:
    queue = PendingQueue(100)
    queue.push(_item(1, method="kline.status", priority=0))
    queue.push(_item(2, method="health.check"))
    item = queue.pop_for(["health.check"])
    assert item is not None and item.seq == 2
    assert queue.has("kline.status") and not queue.has("health.check")


def test_pop_for_several_methods_takes_the_most_urgent() -> None:
    queue = PendingQueue(100)
    queue.push(_item(1, method="a", priority=5))
    queue.push(_item(2, method="b", priority=1))
    queue.push(_item(3, method="a", priority=1))
    assert [queue.pop_for(["a", "b"]).seq for _ in range(3)] == [2, 3, 1]  # type: ignore[union-attr]


def test_pop_for_with_only_skips_methods_outside_it_even_when_more_urgent() -> None:
    queue = PendingQueue(100)
    queue.push(_item(1, method="slow", priority=0))
    queue.push(_item(2, method="fast", priority=9))
    item = queue.pop_for({"slow", "fast"}, only={"fast"})
    assert item is not None and item.seq == 2
    assert queue.pop_for({"slow", "fast"}, only={"fast"}) is None
    assert queue.depth_by_method() == {"slow": 1}


def test_an_emptied_method_leaves_the_depth_table() -> None:
    queue = PendingQueue(100)
    queue.push(_item(1, method="a"))
    queue.pop_for({"a"})
    assert queue.depth_by_method() == {} and not queue.has("a") and len(queue) == 0


def test_bound_is_reported_full() -> None:
    queue = PendingQueue(2)
    queue.push(_item(1))
    assert not queue.full()
    queue.push(_item(2))
    assert queue.full()


def test_expired_requests_leave_the_queue_and_others_stay() -> None:
    queue = PendingQueue(100)
    queue.push(_item(1, deadline=1.0))
    queue.push(_item(2, deadline=5.0))
    queue.push(_item(3, deadline=2.0))
    expired = queue.expire(now=2.0)
    assert sorted(i.seq for i in expired) == [1, 3]
    assert len(queue) == 1 and queue.next_deadline() == 5.0


def test_front_push_requeues_ahead_of_same_priority() -> None:
    queue = PendingQueue(100)
    queue.push(_item(1))
    queue.push(_item(2), front=True)
    assert queue.pop_method("m").seq == 2  # type: ignore[union-attr]


def test_deadline_heap_stays_within_a_multiple_of_the_queue_size() -> None:
    queue = PendingQueue(10)
    for seq in range(1, 20_001):
        queue.push(_item(seq, deadline=1e9))
        assert queue.pop_for(["m"]) is not None
    assert len(queue._deadlines) <= 2 * len(queue) + 1024


def test_byte_budget_also_bounds_the_queue() -> None:
    queue = PendingQueue(100, max_bytes=10)
    big = _item(1)
    big.raw = b"x" * 10
    queue.push(big)
    assert queue.full()
    queue.pop_for(["m"])
    assert not queue.full() and queue.bytes == 0
