"""Symbols as the analytics methods take them: any market's spelling (BTCUSDT, AAPL, V, BRK.B).

Light on purpose (no market tables): the sidecar validates HTTP requests with it too.
"""

from __future__ import annotations

import re
from typing import Any

SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}([.][A-Z]{1,2})?$")


def check_symbol(value: Any) -> str:
    """Upper-case symbol; raises ValueError (-> INVALID_PARAMS with the field) otherwise."""
    if not isinstance(value, str):
        raise ValueError("symbol must be a string")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ValueError(f"invalid symbol {value!r}: 1-20 letters or digits (a class suffix like BRK.B allowed)")
    return symbol
