"""Alpaca stream frames -> typed messages.

Every frame is a JSON array of objects tagged ``T``: control messages (``success`` with ``msg``,
``error`` with ``code`` and ``msg``, ``subscription`` with every channel's list) and data points
(``b`` minute bar, ``d`` daily bar, ``u`` a corrected minute bar; trades ``t``, quotes ``q`` and the
rest are not kept). A malformed entry is skipped and counted, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

BAR_KINDS = frozenset({"b", "d", "u"})


@dataclass(frozen=True, slots=True)
class Success:
    msg: str  # "connected" | "authenticated"


@dataclass(frozen=True, slots=True)
class StreamError:
    code: int
    msg: str


@dataclass(frozen=True, slots=True)
class Subscription:
    channels: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class BarPoint:
    kind: str  # "b" | "d" | "u"
    symbol: str
    bar: dict[str, Any]


Message = Success | StreamError | Subscription | BarPoint


@dataclass(slots=True)
class Parsed:
    messages: list[Message] = field(default_factory=list)
    skipped: int = 0  # entries that were not understood (or not kept)
    malformed: bool = False  # the frame itself was not a JSON array of objects


def parse_frame(raw: str | bytes) -> Parsed:
    out = Parsed()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        out.malformed = True
        return out
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        out.malformed = True
        return out
    for item in data:
        message = _message(item)
        if message is None:
            out.skipped += 1
        else:
            out.messages.append(message)
    return out


def _message(item: Any) -> Message | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("T")
    if kind in BAR_KINDS:
        symbol = item.get("S")
        if not isinstance(symbol, str) or not isinstance(item.get("t"), str):
            return None
        return BarPoint(kind, symbol, item)
    if kind == "success":
        return Success(str(item.get("msg", "")))
    if kind == "error":
        code = item.get("code")
        return StreamError(code if isinstance(code, int) else 0, str(item.get("msg", "")))
    if kind == "subscription":
        return Subscription({k: [str(s) for s in v] for k, v in item.items() if k != "T" and isinstance(v, list)})
    return None


def auth_message(key_id: str, secret_key: str) -> str:
    return orjson.dumps({"action": "auth", "key": key_id, "secret": secret_key}).decode()


def subscribe_message(action: str, channels: dict[str, list[str]]) -> str:
    return orjson.dumps({"action": action, **channels}).decode()
