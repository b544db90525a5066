"""Alpaca's ``timeframe`` parameter: every spelling it accepts, and which bucket a minute falls in.

Alpaca takes ``[1-59]Min`` or ``[1-59]T``, ``[1-23]Hour`` or ``[1-23]H``, ``1Day``/``1D``,
``1Week``/``1W`` and ``[1,2,3,4,6,12]Month``/``M``. Minute and hour bars are stamped with the start
of their bucket, counted from UTC midnight (for steps that divide a day, the clock-aligned times
``13:30``, ``14:00``); day bars with New York midnight of the session's date (``04:00Z`` in summer,
``05:00Z`` in winter); week and month bars with that of the first session of their week / month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_TIMEFRAME_RE = re.compile(r"^([0-9]{1,2})(Min|T|Hour|H|Day|D|Week|W|Month|M)$")


class Unit(StrEnum):
    MINUTE = "Min"
    HOUR = "Hour"
    DAY = "Day"
    WEEK = "Week"
    MONTH = "Month"


_UNITS = {"Min": Unit.MINUTE, "T": Unit.MINUTE, "Hour": Unit.HOUR, "H": Unit.HOUR, "Day": Unit.DAY,
          "D": Unit.DAY, "Week": Unit.WEEK, "W": Unit.WEEK, "Month": Unit.MONTH, "M": Unit.MONTH}
_ALLOWED: dict[Unit, frozenset[int]] = {
    Unit.MINUTE: frozenset(range(1, 60)), Unit.HOUR: frozenset(range(1, 24)), Unit.DAY: frozenset({1}),
    Unit.WEEK: frozenset({1}), Unit.MONTH: frozenset({1, 2, 3, 4, 6, 12}),
}
#: the letter naming the unit inside a page token
TOKEN_CODES: dict[Unit, str] = {Unit.MINUTE: "M", Unit.HOUR: "H", Unit.DAY: "D", Unit.WEEK: "W", Unit.MONTH: "O"}
#: TACore's intervals as Alpaca timeframes
FROM_INTERVAL: dict[str, str] = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1Hour",
                                 "4h": "4Hour", "1d": "1Day"}


@dataclass(frozen=True, slots=True)
class Timeframe:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit.value}"

    @property
    def intraday(self) -> bool:
        return self.unit in (Unit.MINUTE, Unit.HOUR)

    @property
    def step_ms(self) -> int:
        """Bucket length of a minute or hour timeframe."""
        if self.unit is Unit.MINUTE:
            return self.amount * MINUTE_MS
        if self.unit is Unit.HOUR:
            return self.amount * 60 * MINUTE_MS
        raise ValueError(f"{self} has no fixed length")

    def bucket_ms(self, ts_ms: int) -> int:
        """Start of the intraday bucket holding ``ts_ms`` (counted from UTC midnight)."""
        day = ts_ms - ts_ms % DAY_MS
        step = self.step_ms
        return day + (ts_ms - day) // step * step


def parse_timeframe(text: str) -> Timeframe | None:
    """A timeframe from any of Alpaca's spellings; None when Alpaca would answer 'invalid timeframe'."""
    match = _TIMEFRAME_RE.match(text)
    if match is None:
        return None
    amount, unit = int(match.group(1)), _UNITS[match.group(2)]
    if amount not in _ALLOWED[unit]:
        return None
    return Timeframe(amount, unit)
