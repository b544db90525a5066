"""The durable idempotency records on SQLite (a file, as in production) and on PostgreSQL and MariaDB."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tacore.store.idempotency import IdempotencyStore, StoreUnavailable, params_hash, store_url


def test_a_request_id_is_claimed_once_and_its_stored_reply_answers_every_later_claim(store_at: str) -> None:
    first, second = IdempotencyStore(store_at), IdempotencyStore(store_at)  # two workers, one database
    try:
        phash = params_hash({"qty": "1.5", "symbol": "BTCUSDT"})
        assert first.claim("order-1", "execute.order", phash, "w1", lease_s=30).outcome == "claimed"
        running = second.claim("order-1", "execute.order", phash, "w2", lease_s=30)
        assert (running.outcome, running.owner) == ("running", "w1")
        first.complete("order-1", True, None, b'{"status":"success"}')
        done = second.claim("order-1", "execute.order", phash, "w2", lease_s=30)
        assert (done.outcome, done.ok, done.reply) == ("done", True, b'{"status":"success"}')
    finally:
        first.close()
        second.close()


def test_a_run_still_open_past_its_lease_is_answered_lost_never_run_again(store_at: str) -> None:
    store = IdempotencyStore(store_at)
    try:
        store.claim("order-2", "execute.order", params_hash({}), "w1", lease_s=0.05)
        time.sleep(0.1)
        assert store.claim("order-2", "execute.order", params_hash({}), "w2", lease_s=30).outcome == "lost"
    finally:
        store.close()


def test_a_released_claim_lets_a_retry_run_and_a_reused_request_id_is_caught(store_at: str) -> None:
    store = IdempotencyStore(store_at)
    try:
        store.claim("order-3", "execute.order", params_hash({"qty": 1}), "w1", lease_s=30)
        store.release("order-3")  # the run raised a retryable error: it had no effect
        assert store.claim("order-3", "execute.order", params_hash({"qty": 1}), "w1", lease_s=30).outcome == "claimed"
        assert store.claim("order-3", "execute.order", params_hash({"qty": 2}), "w1", lease_s=30).outcome == "mismatch"
        assert store.claim("order-3", "other.method", params_hash({"qty": 1}), "w1", lease_s=30).outcome == "mismatch"
    finally:
        store.close()


def test_records_older_than_the_ttl_are_purged_and_their_request_id_runs_afresh(store_at: str) -> None:
    store = IdempotencyStore(store_at, ttl_s=0.05)
    try:
        store.claim("order-4", "m", params_hash({}), "w1", lease_s=30)
        store.complete("order-4", False, "INTERNAL", b"{}")
        time.sleep(0.1)
        assert store.purge() == 1
        assert store.claim("order-4", "m", params_hash({}), "w1", lease_s=30).outcome == "claimed"
        store.complete("order-4", True, None, b"{}")
        time.sleep(0.1)  # expired but not purged yet: a claim removes it and takes the id afresh
        assert store.claim("order-4", "m", params_hash({}), "w1", lease_s=30).outcome == "claimed"
    finally:
        store.close()


def test_a_store_that_cannot_be_reached_refuses_the_claim(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the database directory should be")
    with pytest.raises(Exception):  # noqa: B017 - creating the schema fails at once, whatever the driver says
        IdempotencyStore(f"sqlite:///{blocked / 'idempotency.db'}")
    store = IdempotencyStore(f"sqlite:///{tmp_path / 'idempotency.db'}", timeout_s=0.2)
    try:
        (tmp_path / "idempotency.db").unlink()
        (tmp_path / "idempotency.db").mkdir()  # the file is gone and cannot be made again
        store.engine.dispose()
        with pytest.raises(StoreUnavailable):
            store.claim("order-5", "m", params_hash({}), "w1", lease_s=30)
    finally:
        store.close()


def test_the_default_location_is_a_file_of_its_own_or_the_server_database(tmp_path: Path) -> None:
    assert store_url(None, tmp_path / "svc.db", None) == f"sqlite:///{tmp_path / 'idempotency.db'}"
    assert store_url("sqlite:////x/y.db", tmp_path / "svc.db", None) == f"sqlite:///{tmp_path / 'idempotency.db'}"
    assert store_url("postgresql+psycopg2://db/x", tmp_path / "svc.db", None) == "postgresql+psycopg2://db/x"
    assert store_url("postgresql+psycopg2://db/x", tmp_path / "svc.db", "mysql+pymysql://o/z") == "mysql+pymysql://o/z"


def test_the_migration_makes_the_same_table_the_store_uses(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from tacore.store.migrate import upgrade_schema
    from tacore.store.request_log import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    upgrade_schema(engine)
    columns = {c["name"]: type(c["type"]).__name__ for c in inspect(engine).get_columns("idempotency_records")}
    engine.dispose()
    store = IdempotencyStore(f"sqlite:///{tmp_path / 'service.db'}")  # on the migrated table: works as is
    try:
        assert store.claim("m-1", "m", params_hash({}), "w1", lease_s=30).outcome == "claimed"
    finally:
        store.close()
    fresh = create_engine(f"sqlite:///{tmp_path / 'own.db'}")
    IdempotencyStore(f"sqlite:///{tmp_path / 'own.db'}").close()
    assert {c["name"]: type(c["type"]).__name__ for c in inspect(fresh).get_columns("idempotency_records")} == columns
    fresh.dispose()


def test_a_batch_of_replies_is_stored_in_one_go(store_at: str) -> None:
    store = IdempotencyStore(store_at)
    try:
        for rid in ("b-1", "b-2"):
            store.claim(rid, "execute.order", params_hash({}), "w1", lease_s=30)
        store.complete_many([("b-1", True, None, b"one"), ("b-2", False, "CONFLICT", b"two")])
        first, second = (store.claim(rid, "execute.order", params_hash({}), "w2", lease_s=30) for rid in ("b-1", "b-2"))
        assert (first.outcome, first.reply, second.ok, second.error_code) == ("done", b"one", False, "CONFLICT")
    finally:
        store.close()


def test_a_lost_run_can_be_taken_over_once_and_a_restarted_owner_ends_its_predecessor_s_leases(store_at: str) -> None:
    store = IdempotencyStore(store_at)
    try:
        # a lease long enough that a loaded machine cannot pass it between two statements
        store.claim("lost-1", "execute.order", params_hash({}), "orders pid 1@host", lease_s=1.0)
        assert not store.take_over("lost-1", "orders pid 2@host", 30)  # still within its lease
        time.sleep(1.1)
        assert store.take_over("lost-1", "orders pid 2@host", 30)
        assert not store.take_over("lost-1", "orders pid 3@host", 30)  # taken: running again
        store.claim("open-1", "execute.order", params_hash({}), "orders pid 2@host", lease_s=600)
        store.claim("open-2", "execute.order", params_hash({}), "w1 pid 9@host", lease_s=600)
        assert store.end_leases("orders pid %@host") == 2  # lost-1's second run and open-1
        assert store.claim("open-1", "execute.order", params_hash({}), "x", lease_s=30).outcome == "lost"
        assert store.claim("open-2", "execute.order", params_hash({}), "x", lease_s=30).outcome == "running"
    finally:
        store.close()
