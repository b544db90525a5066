from __future__ import annotations

import pytest
from pydantic import BaseModel

from tacore.errors import InvalidParams
from workers.registry import CallContext, MethodRegistry


class AddParams(BaseModel):
    a: int
    b: int = 0


def _ctx() -> CallContext:
    return CallContext("r1", "math.add", "w1")


def test_params_model_comes_from_the_annotation_and_is_validated() -> None:
    registry = MethodRegistry()

    @registry.method("math.add", idempotent=True)
    def add(params: AddParams) -> int:
        return params.a + params.b

    spec = registry.get("math.add")
    assert spec is not None and spec.params_model is AddParams and spec.idempotent
    assert spec.invoke({"a": 2, "b": 3}, _ctx()) == 5
    assert registry.declaration() == {"math.add": {"idempotent": True}}


def test_invalid_params_carry_field_level_details() -> None:
    registry = MethodRegistry()

    @registry.method("math.add")
    def add(params: AddParams) -> int:
        return params.a

    spec = registry.get("math.add")
    assert spec is not None
    with pytest.raises(InvalidParams) as info:
        spec.invoke({"a": "x"}, _ctx())
    assert info.value.details[0]["field"] == "a"


def test_handler_may_ask_for_the_call_context() -> None:
    registry = MethodRegistry()

    @registry.method("who")
    def who(params: AddParams, ctx: CallContext) -> str:
        return ctx.worker_id

    spec = registry.get("who")
    assert spec is not None and spec.invoke({"a": 1}, _ctx()) == "w1"


def test_a_handler_without_a_model_annotation_is_refused() -> None:
    with pytest.raises(TypeError):
        MethodRegistry().method("bad")(lambda params: params)


def test_a_method_name_registered_twice_is_refused() -> None:
    registry = MethodRegistry()
    registry.method("dup")(_ok)
    with pytest.raises(ValueError):
        registry.method("dup")(_ok)


def _ok(params: AddParams) -> int:
    return 1


class ResumeParams(BaseModel):
    x: int = 0


def test_resumable_is_declared_on_a_method_that_is_not_idempotent_only() -> None:
    registry = MethodRegistry()

    @registry.method("test.resume", resumable=True)
    def resume(params: ResumeParams) -> int:
        return params.x

    spec = registry.get("test.resume")
    assert spec is not None and spec.resumable and not spec.idempotent
    with pytest.raises(TypeError):
        registry.method("test.both", idempotent=True, resumable=True)(resume)
