"""The node-type registry: ``@register_node`` adds a ``NodeBase`` subclass under its name and aliases.

``node_type(name)`` finds one (the built-in modules are imported on first use, and those named in
``FLOW_NODE_MODULES``, comma-separated, too); ``run_node`` validates a config, runs ``execute`` and checks
what it returned (outputs are JSON, each at most ``MAX_OUTPUT_BYTES``).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from tacore.errors import InvalidParams
from tacore.flows.nodes.base import NodeBase, NodeContext, NodeFailed

N = TypeVar("N", bound=type[NodeBase])

BUILTIN_MODULES = ("price", "indicator", "processor", "ai_model", "condition", "trade", "notification", "actions")
#: the JSON size of one task's outputs past which it fails (a clear error instead of a huge message)
MAX_OUTPUT_BYTES = 1 << 20

_types: dict[str, type[NodeBase]] = {}
_loaded = False
_lock = threading.Lock()


def register_node(name: str, *aliases: str) -> Callable[[N], N]:
    """Register a node type under ``name`` (and ``aliases``); its ``type_name`` becomes ``name``."""

    def decorate(cls: N) -> N:
        if not (isinstance(cls, type) and issubclass(cls, NodeBase)):
            raise TypeError(f"{cls!r} is not a NodeBase subclass")
        cls.type_name = name
        cls.aliases = tuple(aliases)
        for key in (name, *aliases):
            known = _types.get(key)
            if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
                raise ValueError(f"node type {key!r} is registered twice ({known.__qualname__}, {cls.__qualname__})")
            _types[key] = cls
        return cls

    return decorate


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for module in BUILTIN_MODULES:
            importlib.import_module(f"tacore.flows.nodes.{module}")
        for module in filter(None, (m.strip() for m in os.environ.get("FLOW_NODE_MODULES", "").split(","))):
            importlib.import_module(module)
        _loaded = True


def node_type(name: str) -> type[NodeBase] | None:
    _load()
    return _types.get(name)


def node_types() -> dict[str, type[NodeBase]]:
    """Every registered type by its canonical name."""
    _load()
    return {cls.type_name: cls for cls in _types.values()}


def describe() -> list[dict[str, Any]]:
    return [{"type": name, "aliases": list(cls.aliases), "inputs": list(cls.inputs), "outputs": list(cls.outputs),
             "description": cls.description, "config_schema": cls.Config.model_json_schema()}
            for name, cls in sorted(node_types().items())]


def validate_config(type_name: str, config: dict[str, Any]) -> tuple[type[NodeBase], Any]:
    cls = node_type(type_name)
    if cls is None:
        raise InvalidParams(f"unknown node type {type_name!r}",
                            details=[{"field": "node_type", "type": "unknown_type",
                                      "message": f"unknown node type {type_name!r}"}])
    given = {k: v for k, v in config.items() if k != "node_class_type"}
    try:
        return cls, cls.Config.model_validate(given)
    except ValidationError as exc:
        details = [{"field": "config." + ".".join(str(p) for p in err["loc"]), "type": "invalid_config",
                    "message": err["msg"]} for err in exc.errors(include_url=False)]
        raise InvalidParams(f"invalid config for {type_name}", details=details) from None


def run_node(type_name: str, config: dict[str, Any], inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Validate, execute, and check the outputs (handles declared, JSON, size)."""
    cls, model = validate_config(type_name, config)
    outputs = cls().execute(ctx, model, inputs)
    if not isinstance(outputs, dict):
        raise NodeFailed(f"{type_name}.execute returned {type(outputs).__name__}, not a dict of outputs")
    unknown = [h for h in outputs if h not in cls.outputs and "*" not in cls.outputs]
    if unknown:
        raise NodeFailed(f"{type_name} returned undeclared output handle(s) {unknown}")
    try:
        size = len(orjson.dumps(outputs, option=orjson.OPT_NON_STR_KEYS, default=str))
    except TypeError as exc:
        raise NodeFailed(f"{type_name}: outputs are not JSON: {exc}") from None
    if size > MAX_OUTPUT_BYTES:
        raise NodeFailed(f"{type_name}: outputs are {size} bytes of JSON, over the {MAX_OUTPUT_BYTES}-byte limit "
                         "for values passed along edges; pass less (e.g. a smaller limit or window)")
    return outputs
