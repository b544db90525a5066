"""``GET /logs`` against the live request log: every filter, paging with total, and every bad value."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from clients import LazyPirateClient

from .sidecar_helpers import Service, wait_until


@dataclass
class Traffic:
    prefix: str
    bogus_method: str
    started: float
    ended: float
    ok: int = 12
    bad: int = 4
    unknown: int = 3


@pytest.fixture(scope="module")
def traffic(service: Service) -> Iterator[Traffic]:
    """A known batch of requests with unique ids: successes, INVALID_PARAMS and UNKNOWN_METHOD errors."""
    prefix = f"logs-{uuid.uuid4().hex[:10]}"
    bogus = f"test.nothing_{uuid.uuid4().hex[:8]}"
    t = Traffic(prefix, bogus, time.time(), 0.0)
    with LazyPirateClient(service.frontend, timeout_ms=3000, retries=1) as client:
        for i in range(t.ok):
            client.request("health.check", {}, request_id=f"{prefix}-ok-{i}")
        for i in range(t.bad):
            client.request("health.check", {"detailed": [1]}, request_id=f"{prefix}-bad-{i}")
        for i in range(t.unknown):
            client.request(bogus, {}, request_id=f"{prefix}-unknown-{i}")
    t.ended = time.time()
    with service.client() as http:
        wait_until(lambda: http.get("/logs", params={"method": bogus}).json()["total"] == t.unknown, 5,
                   "the recorder to write the batch")
    yield t


def window(t: Traffic) -> dict[str, float]:
    return {"since": t.started - 0.001, "until": t.ended + 0.001}


def test_logs_are_newest_first_with_total(http: httpx.Client, traffic: Traffic) -> None:
    body = http.get("/logs", params={"limit": 5}).json()
    assert body["total"] >= traffic.ok + traffic.bad + traffic.unknown
    assert body["limit"] == 5 and body["offset"] == 0 and len(body["items"]) == 5
    times = [item["received_at"] for item in body["items"]]
    assert times == sorted(times, reverse=True)
    assert set(body["items"][0]) >= {"request_id", "method", "status", "error_code", "worker_id", "priority",
                                     "queue_ms", "processing_ms", "total_ms", "received_at", "finished_at"}


def test_filter_by_method_status_and_error_code(http: httpx.Client, traffic: Traffic) -> None:
    unknown = http.get("/logs", params={"method": traffic.bogus_method}).json()
    assert unknown["total"] == traffic.unknown
    assert {i["error_code"] for i in unknown["items"]} == {"UNKNOWN_METHOD"}
    in_window = {"method": "health.check", **window(traffic)}
    errors = http.get("/logs", params={**in_window, "status": "error"}).json()
    assert errors["total"] == traffic.bad
    assert all(i["status"] == "error" and i["error_code"] == "INVALID_PARAMS" for i in errors["items"])
    ok = http.get("/logs", params={**in_window, "status": "success"}).json()
    assert ok["total"] == traffic.ok and all(i["error_code"] is None for i in ok["items"])
    by_code = http.get("/logs", params={**window(traffic), "error_code": "UNKNOWN_METHOD"}).json()
    assert by_code["total"] == traffic.unknown


def test_filter_by_request_id_and_worker(http: httpx.Client, traffic: Traffic) -> None:
    one = http.get("/logs", params={"request_id": f"{traffic.prefix}-bad-2"}).json()
    assert one["total"] == 1
    row = one["items"][0]
    assert row["error_code"] == "INVALID_PARAMS" and row["worker_id"]
    by_worker = http.get("/logs", params={**window(traffic), "worker_id": row["worker_id"]}).json()
    assert 1 <= by_worker["total"] <= traffic.ok + traffic.bad
    assert http.get("/logs", params={"request_id": "no-such-request"}).json() == {
        "total": 0, "limit": 100, "offset": 0, "items": []}


def test_time_window_accepts_epoch_and_iso(http: httpx.Client, traffic: Traffic) -> None:
    total = traffic.ok + traffic.bad + traffic.unknown
    epoch = http.get("/logs", params=window(traffic)).json()["total"]
    since = datetime.fromtimestamp(traffic.started - 0.001, UTC).isoformat()
    until = datetime.fromtimestamp(traffic.ended + 0.001, UTC).isoformat()
    iso = http.get("/logs", params={"since": since, "until": until}).json()["total"]
    assert epoch == iso
    assert epoch >= total  # the sidecar's own data-agent polls may fall in the window too
    future = http.get("/logs", params={"since": traffic.ended + 3600}).json()
    assert future["total"] == 0
    backwards = http.get("/logs", params={"since": traffic.ended, "until": traffic.started})
    assert backwards.status_code == 200 and backwards.json()["total"] == 0  # an empty range, not an error


def test_limit_and_offset_page_through_the_same_total(http: httpx.Client, traffic: Traffic) -> None:
    params = {"method": "health.check", **window(traffic)}
    pages, offset = [], 0
    while True:
        body = http.get("/logs", params={**params, "limit": 5, "offset": offset}).json()
        assert body["total"] == traffic.ok + traffic.bad
        if not body["items"]:
            break
        pages.extend(i["id"] for i in body["items"])
        offset += 5
        assert offset < 100
    assert len(pages) == len(set(pages)) == traffic.ok + traffic.bad


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": -1}, "offset"),
    ({"status": "maybe"}, "status"),
    ({"error_code": "NOT_A_CODE"}, "error_code"),
    ({"since": "last tuesday"}, "since"),
    ({"until": "2026-13-45"}, "until"),
    ({"method": ""}, "method"),
    ({"request_id": "x" * 300}, "request_id"),
])
def test_bad_query_values_are_422_with_details(http: httpx.Client, params: dict, field: str) -> None:
    reply = http.get("/logs", params=params)
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert any(d["loc"][-1] == field for d in detail), detail
    assert all(d["msg"] for d in detail)
