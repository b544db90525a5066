"""The service's health: one set of dependency states, decided by one function from what each process observes.

Each process observes what it uses and sends the facts to the broker (``broker.report``, once a
heartbeat; ``tacore.reporting``): the recorder its database and its buffer, the data agent its candle
store, cache, exchange connections and ``DATA_DIR``, the supervisor the processes it restarts and the
disk. The broker knows the rest (live workers, records it could not ship). Once a heartbeat the broker
turns all of it into the states below with ``assess``; nothing else decides a state. ``/health`` shows
the broker's set, ``health.check`` and ``kline.status`` the copy each worker receives with the broker's
heartbeat (so they agree, at most a heartbeat apart).

A state is ``{"status": "up" | "degraded" | "down" | "not_configured", "reason": "...", ...details}``.
This module is pure: no sockets, no I/O beyond ``disk_facts``' statvfs.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Every dependency, in the order the reports list them.
DEPENDENCIES: tuple[str, ...] = ("workers", "data_agent", "recorder", "database", "cache", "candle_store", "disk")
_RANK = {"up": 0, "not_configured": 0, "degraded": 1, "down": 2}
#: Drops, recreated databases and the like keep a state degraded this long after they happened.
RECENT_S = 300.0
#: Below this much free space DATA_DIR counts as full.
FULL_BYTES = 1 << 20
#: errno values that mean "the disk cannot take this write" (as opposed to a bug or a bad path).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Report:
    """The latest facts one process sent (``source``: recorder, supervisor, data-agent/<id>)."""

    source: str
    received_at: float  # epoch seconds
    facts: Mapping[str, Any]


@dataclass(slots=True)
class Observations:
    """Everything ``assess`` decides from: the broker's own view plus the processes' latest reports."""

    now: float
    stale_after_s: float
    pool_workers: int = 0
    data_agent_expected: bool = False
    data_agents: list[str] = field(default_factory=list)  # live data-agent worker ids
    ships_records: bool = False
    shipper_dropped: int = 0
    shipper_last_drop_at: float | None = None
    shipper_backlog: int = 0
    cache_configured: bool = False
    database_kind: str | None = None  # the request log's dialect (sqlite, postgresql...), from the settings
    embedded_candle_store: bool = True
    min_free_bytes: int = 1 << 30
    reports: list[Report] = field(default_factory=list)
    #: live data-agent worker id -> when it registered with the broker
    data_agents_since: dict[str, float] = field(default_factory=dict)

    def fresh(self, prefix: str) -> list[Report]:
        return [r for r in self.reports
                if _source_is(r.source, prefix) and self.now - r.received_at <= self.stale_after_s]

    def agent_reports(self) -> list[Report]:
        """The data agents' fresh reports, without one an agent's predecessor under the same id sent before
        the agent registered: a restarted agent is assessed from its own first report, not the dead one's."""
        return [r for r in self.fresh("data-agent")
                if r.received_at >= self.data_agents_since.get(r.source.removeprefix("data-agent/"), 0.0)]

    def latest(self, prefix: str) -> Report | None:
        matching = [r for r in self.reports if _source_is(r.source, prefix)]
        return max(matching, key=lambda r: r.received_at, default=None)


def _source_is(source: str, prefix: str) -> bool:
    return source == prefix or source.startswith(prefix + "/")


def state(status: str, reason: str, **details: Any) -> State:
    return {"status": status, "reason": reason, **details}


def worst(states: Iterable[Mapping[str, Any]]) -> str:
    """``up``, ``degraded`` or ``down``: the worst of ``states`` (``not_configured`` counts as up)."""
    rank = max((_RANK.get(str(s.get("status")), 2) for s in states), default=0)
    return ("up", "degraded", "down")[rank]


def serving_possible(states: Mapping[str, Mapping[str, Any]]) -> bool:
    """Requests can be served while a worker is live (the broker being up is the caller's part)."""
    return states.get("workers", {}).get("status") != "down"


#: What the data agent's own work needs: ``kline.status`` says ``ok`` when all of these are up.
DATA_PLANE: tuple[str, ...] = ("data_agent", "cache", "candle_store", "disk")


def data_plane_status(states: Mapping[str, Mapping[str, Any]]) -> str:
    """``ok`` or ``degraded`` (the seed's ``/status`` word) from the data-plane states."""
    return "ok" if worst(states.get(name, {"status": "down"}) for name in DATA_PLANE) == "up" else "degraded"


def assess(obs: Observations) -> dict[str, State]:
    """The dependency states, in ``DEPENDENCIES`` order."""
    supervised = _supervised(obs)
    return {
        "workers": _workers(obs, supervised.get("workers")),
        "data_agent": _data_agent(obs, supervised.get("data-agent")),
        "recorder": _recorder(obs, supervised.get("recorder")),
        "database": _database(obs),
        "cache": _cache(obs),
        "candle_store": _candle_store(obs),
        "disk": _disk(obs),
    }


# -- one function per dependency ---------------------------------------------------------------------
def _supervised(obs: Observations) -> dict[str, Mapping[str, Any]]:
    report = obs.fresh("supervisor")
    components = report[0].facts.get("components") if report else None
    return dict(components) if isinstance(components, Mapping) else {}


def _restarts(entry: Mapping[str, Any] | None) -> str:
    """What the supervisor says about a component it is restarting ('' when it runs normally)."""
    if not entry or not entry.get("failures_in_row"):
        return ""
    note = f"exited {entry['failures_in_row']} time(s) in a row (last exit code {entry.get('last_exit_code')})"
    wait = entry.get("next_start_in_s")
    if isinstance(wait, (int, float)) and wait > 0:
        note += f"; the supervisor restarts it in {wait:.0f} s (backing off)"
    return note


def _workers(obs: Observations, supervised: Mapping[str, Any] | None) -> State:
    if obs.pool_workers:
        return state("up", f"{obs.pool_workers} live worker(s)", live=obs.pool_workers)
    reason = "no live worker is registered with the broker: nothing but the broker's own methods can be served"
    note = _restarts(supervised)
    return state("down", f"{reason}; {note}" if note else reason, live=0)


def _data_agent(obs: Observations, supervised: Mapping[str, Any] | None) -> State:
    if not obs.data_agent_expected and not obs.data_agents:
        return state("not_configured", "this service runs no data agent")
    if not obs.data_agents:
        reason = "no data agent is registered with the broker: the kline methods and get.market_data cannot be served"
        parts = [reason, _restarts(supervised)]
        last = obs.latest("data-agent")
        if last is not None and last.facts.get("fatal") and obs.now - last.received_at <= RECENT_S:
            parts.append(f"its last words: {last.facts['fatal']}")
        return state("down", "; ".join(p for p in parts if p), workers=[])
    reports = obs.agent_reports()
    if not reports:
        return state("degraded", "registered, but it has not reported its state for "
                     f"{obs.stale_after_s:.0f} s", workers=obs.data_agents)
    connections = sum(int(r.facts.get("feed", {}).get("connections", 0)) for r in reports)
    connected = sum(int(r.facts.get("feed", {}).get("connected", 0)) for r in reports)
    details: dict[str, Any] = {"workers": obs.data_agents, "connections": connections, "connected": connected}
    clocks = [r.facts["store_clock"] for r in reports if isinstance(r.facts.get("store_clock"), Mapping)]
    if clocks:  # the agent's last check of its candles against the exchange's clock (workers.ingest.clock)
        details["store_clock"] = next((c for c in clocks if c.get("state") == "ahead"), clocks[0])
    problems = []
    if connected < connections:
        problems.append(f"{connections - connected} of {connections} exchange connection(s) down")
    ahead = details.get("store_clock", {})
    if ahead.get("state") == "ahead":
        problems.append(f"the candle store holds {ahead.get('ahead_candles')} candle(s) ahead of the exchange's "
                        "clock (not served as live; moved aside at the next start)")
    if problems:
        return state("degraded", "; ".join(problems), **details)
    return state("up", f"{len(obs.data_agents)} data agent worker(s), {connected} exchange connection(s)", **details)


def _recorder(obs: Observations, supervised: Mapping[str, Any] | None) -> State:
    if not obs.ships_records:
        return state("not_configured", "the broker keeps no request log (--no-request-log)")
    reports = obs.fresh("recorder")
    if not reports:
        last = obs.latest("recorder")
        silent = "has not reported yet" if last is None else f"silent for {obs.now - last.received_at:.0f} s"
        held = {"dropped": obs.shipper_dropped, "broker_backlog": obs.shipper_backlog}
        if supervised and supervised.get("running") and not supervised.get("failures_in_row"):
            # alive by its supervisor's account: at idle priority it gets no CPU while the machine is saturated
            return state("degraded", f"the recorder {silent} though its process runs (it runs at background "
                         "priority: a saturated machine delays it); requests are logged late", **held)
        note = _restarts(supervised)
        reason = f"the recorder {silent}: requests are not being logged"
        return state("down", f"{reason}; {note}" if note else reason, **held)
    facts = reports[0].facts
    dropped = int(facts.get("dropped", 0)) + obs.shipper_dropped
    details: dict[str, Any] = {"written": facts.get("written", 0), "buffered": facts.get("buffered", 0),
               "buffer_limit": facts.get("buffer_limit"), "dropped": dropped,
               "write_failures": facts.get("write_failures", 0), "rejected": facts.get("rejected", 0),
               "broker_backlog": obs.shipper_backlog}
    last_drop = max((t for t in (facts.get("last_drop_at"), obs.shipper_last_drop_at) if isinstance(t, (int, float))),
                    default=None)
    if last_drop is not None and obs.now - last_drop <= RECENT_S:
        return state("degraded", f"{dropped} request record(s) dropped, the last {obs.now - last_drop:.0f} s ago: "
                     "the database was unavailable for longer than REQUEST_LOG_BUFFER covers", **details)
    database = facts.get("database") or {}
    if database.get("ok") is False and details["buffered"]:
        return state("degraded", f"holding {details['buffered']} of {details['buffer_limit']} records until the "
                     "database is back", **details)
    return state("up", f"{details['written']} record(s) written", **details)


def _database(obs: Observations) -> State:
    if not obs.ships_records:
        return state("not_configured", "the broker keeps no request log (--no-request-log)")
    fresh = obs.fresh("recorder")
    last = fresh[0] if fresh else obs.latest("recorder")
    facts = dict(last.facts.get("database") or {}) if last else {}
    details = {"kind": facts.get("kind") or obs.database_kind}
    if facts.get("target"):
        details["target"] = facts["target"]
    if not fresh:
        return state("degraded", "unknown: the recorder, which writes it, is not reporting", **details)
    if facts.get("ok") is False:
        return state("down", str(facts.get("error") or "writes fail"), since=facts.get("since"), **details)
    recreated_at = facts.get("recreated_at")
    if isinstance(recreated_at, (int, float)) and obs.now - recreated_at <= RECENT_S:
        return state("degraded", f"the database file disappeared {obs.now - recreated_at:.0f} s ago and was "
                     "recreated empty: the rows it held are gone", **details)
    return state("up", "writes succeed" if facts.get("ok") else "not written yet", **details)


def _cache(obs: Observations) -> State:
    reports = obs.agent_reports()
    if not obs.data_agent_expected and not obs.data_agents:
        reason = "nothing in this service uses the cache (no data agent)"
        return state("not_configured", reason)
    if not reports:
        return state("degraded", "unknown: the data agent, which uses it, is not reporting")
    return _worst_of([_cache_of(r) for r in reports])


def _cache_of(report: Report) -> State:
    facts = report.facts.get("cache") or {}
    kind = facts.get("kind", "unknown")
    if facts.get("ok") is False:
        return state("down", f"{kind}: {facts.get('error') or 'unreachable'}", kind=kind, since=facts.get("since"),
                     reported_by=report.source)
    if kind == "memory":
        return state("up", "in this process's memory (REDIS_URL unset)", kind=kind)
    return state("up", "reachable", kind=kind)


def _candle_store(obs: Observations) -> State:
    if not obs.data_agent_expected and not obs.data_agents:
        return state("not_configured", "this service runs no data agent")
    reports = obs.agent_reports()
    if not reports:
        if obs.embedded_candle_store and not obs.data_agents:
            return state("down", "the data agent, the only process that opens the embedded store, is not running")
        return state("degraded", "unknown: the data agent, which uses it, is not reporting")
    return _worst_of([_candle_store_of(r) for r in reports])


def _candle_store_of(report: Report) -> State:
    facts = report.facts.get("candle_store") or {}
    details = {k: facts.get(k) for k in ("kind", "buffered_rows", "dropped_rows")}
    if facts.get("ok") is False:
        return state("down", f"{facts.get('error') or 'writes fail'}; new candles are buffered",
                     since=facts.get("since"), reported_by=report.source, **details)
    return state("up", "writes succeed", **details)


def _disk(obs: Observations) -> State:
    reports = [r for r in obs.agent_reports() + obs.fresh("supervisor") if isinstance(r.facts.get("disk"), Mapping)]
    if not reports:
        return state("not_configured", "no process of this service reports on DATA_DIR")
    return _worst_of([_disk_of(r.facts["disk"], r.source, obs) for r in reports])


def _disk_of(facts: Mapping[str, Any], source: str, obs: Observations) -> State:
    path = facts.get("path")
    free, total = facts.get("free_bytes"), facts.get("total_bytes")
    details = {"path": path, "free_bytes": free, "total_bytes": total, "reported_by": source}
    if facts.get("error"):
        return state("down", f"DATA_DIR {path} is unusable: {facts['error']}", **details)
    if facts.get("read_only"):
        return state("down", f"DATA_DIR {path} is on a read-only file system", **details)
    write_error, error_at = facts.get("write_error"), facts.get("write_error_at")
    if write_error and isinstance(error_at, (int, float)) and obs.now - error_at <= RECENT_S:
        return state("down", f"a write to DATA_DIR {path} failed {obs.now - error_at:.0f} s ago: {write_error}",
                     **details)
    if isinstance(free, int) and free < FULL_BYTES:
        return state("down", f"DATA_DIR {path} is full ({_size(free)} free)", **details)
    if isinstance(free, int) and free < obs.min_free_bytes:
        return state("degraded", f"{_size(free)} free on DATA_DIR {path}, below DATA_DIR_MIN_FREE_MB "
                     f"({_size(obs.min_free_bytes)})", **details)
    return state("up", f"{_size(free) if isinstance(free, int) else '?'} free", **details)


def _worst_of(states: list[State]) -> State:
    return max(states, key=lambda s: _RANK.get(str(s["status"]), 2))


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# -- facts any process can gather ---------------------------------------------------------------------
def disk_facts(path: Path) -> dict[str, Any]:
    """Free and total bytes of the file system holding ``path`` (its nearest existing ancestor), and
    whether it is mounted read-only."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError as exc:
        return {"path": str(path), "error": f"{type(exc).__name__}: {exc}"}
    return {"path": str(path), "free_bytes": st.f_bavail * st.f_frsize, "total_bytes": st.f_blocks * st.f_frsize,
            "read_only": bool(st.f_flag & os.ST_RDONLY)}


def is_disk_error(problem: BaseException | str) -> bool:
    """A write failed because of the disk (full, over quota, read-only), not because of the caller; a
    message (a storage engine's error text) counts when it carries the system's words for one of those."""
    if isinstance(problem, OSError) and problem.errno in DISK_ERRNOS:
        return True
    text = str(problem)
    return any(os.strerror(code) in text for code in DISK_ERRNOS)
