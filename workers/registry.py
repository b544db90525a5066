"""Method registration: a name, a pydantic params model, a plain typed handler, idempotent or not.

Handlers know nothing of ZeroMQ: they take a validated params model (and, if they ask for it, a
``CallContext``) and return JSON-serialisable data. Raising a ``TACoreError`` sends its code; any
other exception becomes ``INTERNAL`` and the worker lives on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from tacore.auth.roles import Role, parse_role
from tacore.errors import InvalidParams
from workers.context import CallContext, CancelSignal

__all__ = ["CallContext", "CancelSignal", "MethodRegistry", "MethodSpec", "method_spec"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    handler: Callable[..., Any]
    params_model: type[BaseModel]
    idempotent: bool
    wants_context: bool
    description: str = ""
    #: the role a client key needs to call it, when it declares one (tacore/auth/roles.py says how it combines)
    role: Role | None = None
    #: not idempotent, but safe to run again once its first run is known to have ended without a reply,
    #: because it keeps its own durable record of what it did (``execute.order``: the order ledger)
    resumable: bool = False

    def invoke(self, params: dict[str, Any], ctx: CallContext) -> Any:
        return self.call(self.validate(params), ctx)

    def validate(self, params: dict[str, Any]) -> BaseModel:
        """The params model; ``INVALID_PARAMS`` with a detail per field otherwise."""
        try:
            return self.params_model.model_validate(params)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in err["loc"]) or None, "message": err["msg"], "type": err["type"]}
                for err in exc.errors(include_url=False)
            ]
            raise InvalidParams(f"invalid params for {self.name}", details=details) from None

    def call(self, model: BaseModel, ctx: CallContext) -> Any:
        """Run the handler on validated params; a pydantic result becomes plain data."""
        result = self.handler(model, ctx) if self.wants_context else self.handler(model)
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        return result


class MethodRegistry:
    """The methods one worker serves; declared to the broker in READY."""

    def __init__(self, specs: Iterable[MethodSpec] = ()) -> None:
        self._specs: dict[str, MethodSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: MethodSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"method {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def method(self, name: str, *, idempotent: bool = False, role: Role | str | None = None,
               resumable: bool = False) -> Callable[[F], F]:
        """Register ``handler(params: Model[, ctx: CallContext])``; the params model comes from its annotation.

        ``role`` (``read``, ``trade``, ``admin``) is the role a client key needs to call it when the
        broker has keys on; a method that changes anything should say.
        ``resumable`` (only for a method that is not idempotent): a retry that finds the first run ended
        without a reply (its worker died) runs it again instead of answering ``WORKER_LOST``, because the
        method's own durable record makes a second run find what the first one did.
        """

        def decorate(handler: F) -> F:
            self.add(method_spec(name, handler, idempotent=idempotent, role=role, resumable=resumable))
            return handler

        return decorate

    def include(self, other: MethodRegistry) -> None:
        for spec in other:
            self.add(spec)

    def get(self, name: str) -> MethodSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def declaration(self) -> dict[str, dict[str, Any]]:
        """The ``methods`` object of a READY message."""
        return {name: {"idempotent": spec.idempotent} | ({"role": str(spec.role)} if spec.role else {})
                for name, spec in sorted(self._specs.items())}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def method_spec(name: str, handler: Callable[..., Any], *, idempotent: bool,
                role: Role | str | None = None, resumable: bool = False) -> MethodSpec:
    signature = inspect.signature(handler)
    parameters = list(signature.parameters.values())
    if not parameters or len(parameters) > 2:
        raise TypeError(f"handler for {name!r} must take (params) or (params, ctx)")
    hints = get_type_hints(handler)
    model = hints.get(parameters[0].name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"handler for {name!r}: its first parameter must be annotated with a pydantic model")
    doc = inspect.getdoc(handler) or ""
    if resumable and idempotent:
        raise TypeError(f"{name!r}: resumable is for methods that are not idempotent")
    return MethodSpec(name, handler, model, idempotent, len(parameters) == 2, doc.split("\n", 1)[0],
                      None if role is None else parse_role(str(role)), resumable)
