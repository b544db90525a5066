"""Durable idempotency records: a non-idempotent request runs at most once per ``request_id``, across restarts.

A worker claims the request_id (one committed INSERT) before it runs a non-idempotent handler and
stores the reply on the record after (one UPDATE). A retry that reaches any worker sharing the store
finds the record: the stored reply if the first run finished, ``IN_PROGRESS`` while it may still be
running (until its lease, the request's deadline plus the recycle grace, after which a pool worker
still running it has been killed), and past the lease an unknown outcome (``WORKER_LOST``). Records
live in SQL (SQLAlchemy): they survive kill -9 of the broker and of the worker, and a server database
shares them between hosts. Idempotent methods never touch the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Double,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.mysql import LONGBLOB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

log = logging.getLogger("tacore.idempotency")

#: Its own metadata: the records usually live in a database of their own (see ``store_url``).
metadata = MetaData()

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("request_id", String(256), primary_key=True),
    Column("method", String(128), nullable=False),
    Column("params_hash", String(64), nullable=False),  # sha256 of the params: a reused request_id is caught
    Column("state", String(16), nullable=False),  # running | done
    Column("owner", String(256), nullable=False),  # worker_id pid@host that claimed it
    Column("claimed_at", Double, nullable=False),  # epoch seconds
    Column("lease_until", Double, nullable=False),  # epoch seconds: a run still "running" past it is over
    Column("finished_at", Double, nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("error_code", String(32), nullable=True),
    # the reply frame the client got (or would have); MySQL's plain BLOB stops at 64 KiB
    Column("reply", LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb"), nullable=True),
    Index("ix_idempotency_records_claimed_at", "claimed_at"),
)

Outcome = Literal["claimed", "done", "running", "lost", "mismatch"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``claim`` found: ``claimed`` (run it now) or the first run's record."""

    outcome: Outcome
    method: str = ""
    owner: str = ""
    claimed_at: float = 0.0
    lease_until: float = 0.0
    ok: bool = False
    error_code: str | None = None
    reply: bytes = b""


class StoreUnavailable(Exception):
    """The store could not be reached or written in time: the request must not run."""


def params_hash(params: Any) -> str:
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()


def store_url(database_url: str | None, database_path: Path, idempotency_url: str | None) -> str:
    """``IDEMPOTENCY_URL``; else the service's server database; else SQLite beside ``DATABASE_PATH``.

    A file of its own rather than the request log's SQLite file: SQLite has one writer at a time, and
    the recorder, which runs at background priority, would hold up claims while it writes a batch.
    """
    if idempotency_url:
        return idempotency_url
    if database_url and not database_url.startswith("sqlite"):
        return database_url
    return f"sqlite:///{database_path.parent / 'idempotency.db'}"


def make_store_engine(url: str, timeout_s: float, background_checkpoint: bool = False) -> Engine:
    """An engine whose every wait (lock, connect, statement) is bounded by ``timeout_s``. With
    ``background_checkpoint`` its SQLite connections leave checkpoints to a ``WalCheckpointer``."""
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = timeout_s  # the busy timeout: how long a claim waits for the writer lock
    elif url.startswith("postgresql"):
        connect_args["connect_timeout"] = max(1, round(timeout_s))
        ms = int(timeout_s * 1000)
        connect_args["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"
    elif url.startswith("mysql") or url.startswith("mariadb"):
        seconds = max(1, round(timeout_s))
        connect_args.update(connect_timeout=seconds, read_timeout=seconds, write_timeout=seconds)
    # a server connection may have dropped while idle: test it when taken (a SQLite file cannot drop)
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if background_checkpoint:
            event.listen(engine, "connect", _no_autocheckpoint)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process's death, not the machine's
    cursor.close()


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def create_tables(engine: Engine, attempts: int = 10) -> None:
    """Create the records' table (and its index) unless it exists; safe when a whole pool of workers does it
    at once on one fresh database.

    ``create_all`` checks, then creates: two processes can both find no table, and the second CREATE fails
    ("table ... already exists", on PostgreSQL a duplicate key in ``pg_type``; SQLite may also say the file is
    locked). The loser tries again: by then the winner's DDL is committed (SQLite and PostgreSQL create the
    table and its index in one transaction), so the check finds the table and there is nothing left to do.
    """
    for attempt in range(1, attempts + 1):
        try:
            metadata.create_all(engine, tables=[idempotency_records], checkfirst=True)
            return
        except SQLAlchemyError as exc:
            if attempt == attempts:
                raise
            log.debug("creating %s raced another process (%s); checking again", idempotency_records.name,
                      str(exc).splitlines()[0])
            time.sleep(random.uniform(0.01, 0.05) * attempt)


class IdempotencyStore:
    def __init__(self, url: str, *, ttl_s: float = 86_400.0, timeout_s: float = 2.0,
                 purge_every_s: float = 60.0, background_checkpoint: bool = False) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.engine = make_store_engine(url, timeout_s, background_checkpoint)
        # Each thread holds one connection: a pool checkout (and its reset) per claim cost as much as the claim.
        self._local = threading.local()
        self._held: list[Connection] = []
        self._held_lock = threading.Lock()
        self._purge_every_s = purge_every_s
        self._next_purge = 0.0
        create_tables(self.engine)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction on this thread's connection; a connection that failed is dropped, not reused."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._local.conn = self.engine.connect()
            with self._held_lock:
                self._held.append(conn)
        try:
            with conn.begin():
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError:
            self._local.conn = None
            with self._held_lock, contextlib.suppress(ValueError):
                self._held.remove(conn)
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
            raise

    @property
    def kind(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        """Where the records are (no password): workers that serve one method must all share it."""
        return self.engine.url.render_as_string(hide_password=True)

    def claim(self, request_id: str, method: str, phash: str, owner: str, lease_s: float) -> Claim:
        """Take ``request_id`` for a first run, or return the record of the run that has it."""
        now = time.time()
        if now >= self._next_purge:
            self._next_purge = now + self._purge_every_s
            self.purge(now)
        row = {"request_id": request_id, "method": method, "params_hash": phash, "state": "running",
               "owner": owner[:256], "claimed_at": now, "lease_until": now + lease_s}
        try:
            for _ in range(2):
                try:
                    with self._transaction() as conn:
                        conn.execute(insert(idempotency_records), row)
                    return Claim("claimed", method, owner, now, now + lease_s)
                except IntegrityError:
                    found = self._existing(request_id, method, phash, now)
                    if found is not None:
                        return found
            raise StoreUnavailable(f"request_id {request_id!r} is claimed and released over and over")
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"idempotency store {self.kind}: {type(exc).__name__}: {exc}") from None

    def _existing(self, request_id: str, method: str, phash: str, now: float) -> Claim | None:
        """The record holding ``request_id`` (None once it expired and was removed: claim again)."""
        with self._transaction() as conn:
            record = conn.execute(select(idempotency_records).where(
                idempotency_records.c.request_id == request_id)).mappings().first()
            if record is None:
                return None  # released meanwhile
            finished = record["finished_at"]
            if now - (finished if finished is not None else record["lease_until"]) > self.ttl_s:
                conn.execute(delete(idempotency_records).where(idempotency_records.c.request_id == request_id))
                return None
        base = {"method": record["method"], "owner": record["owner"], "claimed_at": record["claimed_at"],
                "lease_until": record["lease_until"]}
        if record["method"] != method or record["params_hash"] != phash:
            return Claim("mismatch", **base)
        if record["state"] == "done":
            return Claim("done", **base, ok=bool(record["ok"]), error_code=record["error_code"],
                         reply=bytes(record["reply"] or b""))
        return Claim("running" if now < record["lease_until"] else "lost", **base)

    def complete(self, request_id: str, ok: bool, error_code: str | None, reply: bytes) -> None:
        """Store the first run's reply (tried twice; if both fail, retries see the run as open, then lost)."""
        values = {"state": "done", "finished_at": time.time(), "ok": ok, "error_code": error_code, "reply": reply}
        for attempt in range(2):
            try:
                with self._transaction() as conn:
                    conn.execute(update(idempotency_records)
                                 .where(idempotency_records.c.request_id == request_id).values(**values))
                return
            except SQLAlchemyError as exc:
                log.error("idempotency store: storing the reply of %s failed (attempt %d): %s", request_id,
                          attempt + 1, exc)

    def complete_many(self, outcomes: list[tuple[str, bool, str | None, bytes]]) -> None:
        """``complete`` for a batch ``(request_id, ok, error_code, reply)`` in one transaction (a group commit's
        replies); tried twice, then one by one."""
        if not outcomes:
            return
        now = time.time()
        rows = [{"key": rid, "state": "done", "finished_at": now, "ok": ok, "error_code": code, "reply": reply}
                for rid, ok, code, reply in outcomes]
        statement = update(idempotency_records).where(idempotency_records.c.request_id == bindparam("key")).values(
            state=bindparam("state"), finished_at=bindparam("finished_at"), ok=bindparam("ok"),
            error_code=bindparam("error_code"), reply=bindparam("reply"))
        for attempt in range(2):
            try:
                with self._transaction() as conn:
                    conn.execute(statement, rows)
                return
            except SQLAlchemyError as exc:
                log.error("idempotency store: storing %d replies failed (attempt %d): %s", len(rows), attempt + 1,
                          exc)
        for rid, ok, code, reply in outcomes:
            self.complete(rid, ok, code, reply)

    def take_over(self, request_id: str, owner: str, lease_s: float) -> bool:
        """Claim again a first run that ended without a reply (state running, lease over); True if we did.
        Only for a resumable method: its own record lets the second run find what the first did."""
        now = time.time()
        c = idempotency_records.c
        with self._transaction() as conn:
            result = conn.execute(update(idempotency_records).where(
                c.request_id == request_id, c.state == "running", c.lease_until <= now).values(
                owner=owner[:256], claimed_at=now, lease_until=now + lease_s))
        return int(result.rowcount or 0) == 1

    def end_leases(self, owner_like: str) -> int:
        """End now the leases of open runs whose owner matches ``owner_like`` (SQL LIKE): a worker that
        restarts declares the runs its dead predecessor left open over, so retries need not wait."""
        now = time.time()
        c = idempotency_records.c
        try:
            with self._transaction() as conn:
                result = conn.execute(update(idempotency_records).where(
                    c.state == "running", c.owner.like(owner_like), c.lease_until > now).values(lease_until=now))
            return int(result.rowcount or 0)
        except SQLAlchemyError as exc:
            log.warning("idempotency store: ending the leases of %s failed: %s", owner_like, exc)
            return 0

    def release(self, request_id: str) -> None:
        """Forget a claim whose run had no effect (a retryable error): a retry runs the request afresh."""
        try:
            with self._transaction() as conn:
                conn.execute(delete(idempotency_records).where(idempotency_records.c.request_id == request_id))
        except SQLAlchemyError as exc:
            log.error("idempotency store: releasing %s failed: %s", request_id, exc)

    def purge(self, now: float | None = None) -> int:
        """Remove records older than the TTL (finished, or whose lease ran out that long ago)."""
        cutoff = (time.time() if now is None else now) - self.ttl_s
        c = idempotency_records.c
        try:
            with self._transaction() as conn:
                result = conn.execute(delete(idempotency_records).where(or_(
                    and_(c.state == "done", c.finished_at < cutoff),
                    and_(c.state == "running", c.lease_until < cutoff))))
            return int(result.rowcount or 0)
        except SQLAlchemyError as exc:
            log.warning("idempotency store: purge failed: %s", exc)
            return 0

    def close(self) -> None:
        with self._held_lock:
            held, self._held = self._held, []
        for conn in held:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        self.engine.dispose()
