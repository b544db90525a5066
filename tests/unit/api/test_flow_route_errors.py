"""How the flow routes turn the scheduler's error replies into HTTP answers (tacore/api/routes/flows.py)."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from clients import RemoteError
from tacore.api.errors import ComponentUnavailable
from tacore.api.routes.flows import _encoded, _raise_for


def raised(exc: RemoteError, method: str = "flow.run", where: str = "body") -> BaseException:
    with pytest.raises((ComponentUnavailable, RequestValidationError)) as info:
        _raise_for(exc, method, where)
    return info.value


def test_every_problem_of_a_refused_definition_becomes_a_422_entry_with_its_pointer() -> None:
    details = [{"pointer": "/flow_json/nodes/2", "type": "empty_node", "message": "empty node object"},
               {"pointer": "/flow_json/edges/0/target", "type": "unknown_node", "message": "no such node"},
               {"pointer": "/a~1b/c~0d", "type": "invalid_field", "message": "escaped"}]
    error = raised(RemoteError("INVALID_PARAMS", "invalid flow", details=details))
    assert isinstance(error, RequestValidationError)
    entries = list(error.errors())
    assert [e["loc"] for e in entries] == [("body", "flow_json", "nodes", "2"),
                                           ("body", "flow_json", "edges", "0", "target"), ("body", "a/b", "c~d")]
    assert [e["pointer"] for e in entries] == [d["pointer"] for d in details]
    assert [e["type"] for e in entries] == ["empty_node", "unknown_node", "invalid_field"]


def test_a_field_detail_is_located_by_its_dotted_path() -> None:
    error = raised(RemoteError("INVALID_PARAMS", "bad config", details=[
        {"field": "config.symbol", "type": "invalid_config", "message": "Field required"}]), "node.execute")
    assert isinstance(error, RequestValidationError)
    assert error.errors()[0]["loc"] == ("body", "config", "symbol")


def test_invalid_params_without_details_is_still_one_422_entry() -> None:
    error = raised(RemoteError("INVALID_PARAMS", "cycle 5 exists already"), where="path")
    assert isinstance(error, RequestValidationError)
    assert error.errors() == [{"type": "value_error", "loc": ("path",), "msg": "cycle 5 exists already",
                               "input": None}]


def test_not_found_is_a_404_of_the_scheduler() -> None:
    error = raised(RemoteError("INVALID_PARAMS", "no flow 'x'", details=[{"type": "not_found", "message": "x"}]))
    assert isinstance(error, ComponentUnavailable)
    assert (error.status_code, error.component, error.message) == (404, "flow_scheduler", "no flow 'x'")


@pytest.mark.parametrize("code", ["UNKNOWN_METHOD", "UNAVAILABLE", "TIMEOUT", "BUSY", "WORKER_LOST"])
def test_a_scheduler_that_cannot_answer_is_a_503(code: str) -> None:
    error = raised(RemoteError(code, "later"))
    assert isinstance(error, ComponentUnavailable) and error.status_code == 503


def test_a_failing_node_is_a_502_of_the_workers() -> None:
    error = raised(RemoteError("INTERNAL", "ZeroDivisionError"), "node.execute")
    assert isinstance(error, ComponentUnavailable)
    assert (error.status_code, error.component) == (502, "workers") and "ZeroDivisionError" in error.message


def test_params_over_the_broker_limit_are_a_413_and_lone_surrogates_a_422() -> None:
    _encoded({"flow_id": "x" * 100}, "body", 1024)
    with pytest.raises(ComponentUnavailable) as too_big:
        _encoded({"flow_id": "x" * 2000}, "body", 1024)
    assert too_big.value.status_code == 413 and "MAX_REQUEST_BYTES" in too_big.value.message
    with pytest.raises(RequestValidationError):
        _encoded({"flow_id": "\ud800"}, "body", None)
