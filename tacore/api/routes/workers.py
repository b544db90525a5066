"""``GET /workers``: every worker the broker knows, live or recently dead, from the last snapshot."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from tacore.api.broker_link import Sampler
from tacore.api.deps import SamplerDep
from tacore.api.schemas import Problem, WorkerInfo, WorkersReply

router = APIRouter(tags=["workers"])


@router.get("/workers", response_model=WorkersReply, responses={503: {"model": Problem}},
            summary="Workers with state, methods, counts, last heartbeat and current request")
async def workers(
    sampler: SamplerDep,
    state: Annotated[Literal["idle", "busy", "dead"] | None, Query(description="only workers in this state")] = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=64, description="e.g. worker, data-agent")] = None,
) -> Response:
    if state is None and kind is None:  # the common case: rendered once per broker poll
        body = sampler.memo(MEMO_KEY, lambda: render(sampler))
    else:
        body = workers_reply(sampler, state, kind).model_dump_json().encode()
    return Response(body, media_type="application/json")


MEMO_KEY = "workers"


def render(sampler: Sampler) -> bytes:
    """The unfiltered reply, as the sampler keeps it warm (``Sampler.keep_warm``) and the route serves it."""
    return workers_reply(sampler, None, None).model_dump_json().encode()


def workers_reply(sampler: Sampler, state: str | None, kind: str | None) -> WorkersReply:
    rows = sampler.workers()
    by_state = {"idle": 0, "busy": 0, "dead": 0}
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
    selected = [row for row in rows
                if (state is None or row["state"] == state) and (kind is None or row.get("kind") == kind)]
    return WorkersReply(snapshot_age_s=sampler.snapshot_age_s(), live=by_state["idle"] + by_state["busy"],
                        by_state=by_state, workers=[WorkerInfo(**row) for row in selected])
