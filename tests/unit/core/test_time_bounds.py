"""Every time a method takes (epoch ms) is bounded to the store's Int64: past it a query would wrap around,
so the params models refuse it (INVALID_PARAMS) and take the largest storable value."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tacore.analytics.params import AnalysisParams, RiskParams
from tacore.analytics.scan_criteria import ScanCriteria
from tacore.intervals import MAX_TIME_MS
from workers.methods.klines import HistoryParams

CASES: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (HistoryParams, {"symbol": "BTCUSDT", "interval": "1m"}, "start"),
    (HistoryParams, {"symbol": "BTCUSDT", "interval": "1m"}, "end"),
    (AnalysisParams, {"symbol": "BTCUSDT"}, "end"),
    (RiskParams, {"portfolio": {"BTCUSDT": "1"}}, "end"),
    (ScanCriteria, {}, "as_of"),
]


@pytest.mark.parametrize(("model", "base", "field"), CASES, ids=[f"{m.__name__}.{f}" for m, _, f in CASES])
def test_times_past_int64_are_refused_and_the_largest_storable_one_is_taken(
        model: type[BaseModel], base: dict[str, Any], field: str) -> None:
    assert getattr(model.model_validate({**base, field: MAX_TIME_MS}), field) == 2**63 - 1
    for value in (2**63, 2**64 - 1, 2**64 + 5):
        with pytest.raises(ValidationError):
            model.model_validate({**base, field: value})
