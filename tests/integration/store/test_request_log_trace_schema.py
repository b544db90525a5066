"""Revision 0005 adds the request log's params and error_message in place: the migrated table is the one the
code defines, older rows stay (with neither), and records shipped with a request and a reply fill both."""

from __future__ import annotations

from pathlib import Path

import orjson
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from tacore.store.migrate import _config, current_revision, upgrade_schema
from tacore.store.request_log import insert_records, make_engine, metadata, request_log

OLD = ["old-1", "health.check", "success", None, "w1", 5, 0.1, 0.2, 0.3, 1000.0, 1000.1, False]


def test_an_existing_log_gains_params_and_error_message_and_keeps_its_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0004")
        conn.execute(request_log.insert().values(dict(zip(
            ("request_id", "method", "status", "error_code", "worker_id", "priority", "queue_ms", "processing_ms",
             "total_ms", "received_at", "finished_at", "internal"), OLD, strict=True))))
    assert upgrade_schema(engine) == ("0004", "0005")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "request_log" in repr(d)] == []  # the code's table, exactly
    request = {"request_id": "new-1", "method": "execute.order", "params": {"symbol": "AAPL", "api_key": "k"}}
    reply = {"status": "error", "error": {"code": "INVALID_PARAMS", "message": "quantity: must be greater than 0"}}
    shipped = orjson.loads(orjson.dumps([["new-1", "execute.order", "error", "INVALID_PARAMS", "orders", 5, 0.1, 0.2,
                                          0.3, 2000.0, 2000.1, False, orjson.Fragment(orjson.dumps(request)),
                                          orjson.dumps(reply).decode()]]))
    insert_records(engine, shipped)
    with engine.connect() as conn:
        rows = {r.request_id: r for r in conn.execute(select(request_log))}
    assert rows["old-1"].params is None and rows["old-1"].error_message is None
    assert orjson.loads(rows["new-1"].params) == {"symbol": "AAPL", "api_key": "***"}
    assert rows["new-1"].error_message == "quantity: must be greater than 0"
    assert current_revision(engine) == "0005"
    engine.dispose()
