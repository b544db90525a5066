"""The history's rows, built from the core's objects in the scheduler's loop (a task's row once per write of
it: this is the per-node cost of the durable history). A task's row is a tuple in ``INSERT_FIELDS`` or
``UPDATE_FIELDS`` order (the writing thread hands them to the driver as they are); flows and cycles are dicts.
"""

from __future__ import annotations

from typing import Any

import orjson

from tacore.flows.core import Cycle, Flow, Task

TASK_FIELDS = ("type", "status", "input_data", "output_data", "error_message", "flow_id", "cycle", "node_id",
               "attempt", "preemptions", "worker", "priority", "request_id", "timeout_ms", "retries", "queued_at",
               "started_at", "finished_at")

INSERT_FIELDS = ("id", *TASK_FIELDS, "component_id", "created_at", "updated_at")
UPDATE_FIELDS = (*TASK_FIELDS, "updated_at")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _shared(task: Task) -> tuple[Any, ...]:
    """The ``TASK_FIELDS`` of a task, in order (written out: this runs once per task row)."""
    return (task.type, task.status, _json(task.input_data), _json(task.output_data), task.error_message,
            task.flow_id, task.cycle, task.node_id, task.attempt, task.preemptions, task.worker, task.priority,
            task.request_id, task.timeout_ms, task.retries, task.queued_at, task.started_at, task.finished_at)


def insert_values(task: Task, now: float) -> tuple[Any, ...]:
    return (task.id, *_shared(task), task.component, task.created_at or now, now)


def update_values(task: Task, now: float) -> tuple[Any, ...]:
    return (*_shared(task), now, task.id)


def cycle_row(cycle: Cycle, now: float) -> dict[str, Any]:
    return {"flow_id": cycle.flow_id, "cycle": cycle.cycle, "trigger": cycle.trigger,
            "trigger_key": cycle.trigger_key, "scheduled_at": cycle.scheduled_at, "status": cycle.status,
            "started_at": cycle.started_at, "finished_at": cycle.finished_at, "error": cycle.error,
            "event": cycle.event, "updated_at": now}


def flow_row(flow: Flow, now: float) -> dict[str, Any]:
    spec = flow.spec
    return {"flow_id": flow.id, "name": spec.options.name, "status": flow.status, "definition": spec.definition(),
            "priority": spec.options.priority, "trigger": spec.trigger, "next_cycle": flow.next_cycle,
            "next_run_at": flow.next_run_at, "last_tick": flow.last_tick, "missed_total": flow.missed_total,
            "version": flow.version, "updated_at": now}

