"""The broker's heap settling (tacore.heap) and its request-log records shipped as one JSON array."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import zmq

from tacore.broker.records import RecordShipper


def test_settle_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    # in a process of its own: freezing is for the whole process
    code = ("import gc; from tacore import heap; frozen = heap.settle(); "
            "assert frozen == gc.get_freeze_count() > 1000, frozen; "
            "assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD; assert gc.isenabled(); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_records_added_one_by_one_leave_as_one_json_array_in_order() -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    shipper = RecordShipper(ctx, f"tcp://127.0.0.1:{port}", batch_size=1000, flush_ms=200, buffer_limit=1000)
    try:
        records: list[list[Any]] = [
            ["r1", "health.check", "success", None, "w1", 5, 0.1, 0.2, 0.3, 1.5, 1.6, False,
             orjson.Fragment(b'{"method":"health.check"}'), None],
            ["r2", "x", "error", "UNKNOWN_METHOD", None, 5, 0.0, 0.0, 0.01, 2.0, 2.0, True, 12, "no worker"],
        ]
        for record in records:
            shipper.add(record)
        assert shipper.pending == 2
        shipper.flush()
        assert pull.poll(5000)
        shipped = orjson.loads(pull.recv())
        assert shipped == [[*records[0][:12], {"method": "health.check"}, None], records[1]]
        assert shipper.shipped == 2 and shipper.pending == 0
    finally:
        shipper.close()
        pull.close()
        ctx.term()
