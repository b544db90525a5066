from __future__ import annotations

from tacore.broker.dedupe import DedupeCache


def test_reply_is_returned_until_its_ttl_passes_and_a_prune_runs() -> None:
    cache = DedupeCache(10, ttl_s=5)
    cache.put("r1", b"reply", now=100.0)
    assert cache.prune(now=104.0) == 0 and cache.get("r1") == b"reply"
    assert cache.prune(now=105.0) == 1
    assert cache.get("r1") is None and "r1" not in cache


def test_oldest_entries_are_evicted_past_the_bound() -> None:
    cache = DedupeCache(3, ttl_s=60)
    for i in range(5):
        cache.put(f"r{i}", b"x", now=float(i))
    assert len(cache) == 3
    assert cache.get("r0") is None and cache.get("r4") == b"x"


def test_prune_drops_only_expired_entries() -> None:
    cache = DedupeCache(10, ttl_s=1)
    cache.put("a", b"1", now=0.0)
    cache.put("b", b"2", now=5.0)
    assert cache.prune(now=3.0) == 1
    assert len(cache) == 1 and cache.get("b") == b"2"


def test_a_request_id_stored_again_keeps_its_newer_reply_past_the_older_expiry() -> None:
    cache = DedupeCache(max_entries=10, ttl_s=10.0)
    cache.put("r", b"old", now=0.0)
    cache.put("r", b"new", now=5.0)
    assert cache.prune(now=12.0) == 0  # the first slot is stale: the newer entry stays
    assert cache.get("r") == b"new" and "r" in cache
    assert cache.prune(now=16.0) == 1 and "r" not in cache


def test_memory_stays_bounded_when_the_same_ids_are_stored_over_and_over() -> None:
    cache = DedupeCache(max_entries=100, ttl_s=1e9)
    for i in range(10_000):
        cache.put(f"r{i % 7}", b"x", now=float(i))
    assert len(cache._order_id) <= 100 and len(cache) == 7


def test_a_zero_bound_or_ttl_stores_nothing() -> None:
    for cache in (DedupeCache(0, ttl_s=60), DedupeCache(10, ttl_s=0)):
        cache.put("r", b"x", now=0.0)
        assert cache.get("r") is None and len(cache) == 0
