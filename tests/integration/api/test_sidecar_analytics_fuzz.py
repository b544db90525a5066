"""Schemathesis on the analytics endpoints (``/scan``, ``/risk``, ``/analysis/{symbol}``) of the demo's sidecar,
with the real data agent behind them: whatever the OpenAPI schema allows (positive) and what it does not
(negative) is answered 200 or 422 (negative: also 400 for a body that is not JSON, 401 for a mangled key),
never a server error, in a shape and status the schema documents.

The operations' strategies drive a plain Hypothesis test (schemathesis' pytest fixture loader does not run
under this pytest), with the schema read from the running sidecar.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from .sidecar_helpers import Service, wait_until

#: what a generated request may be answered, by generation mode
EXPECTED = {GenerationMode.POSITIVE: {200, 422}, GenerationMode.NEGATIVE: {200, 400, 401, 422}}
OPERATIONS = [("/scan", "GET"), ("/scan", "POST"), ("/risk", "GET"), ("/risk", "POST"), ("/analysis/{symbol}", "GET")]


@pytest.fixture(scope="module")
def analytics_schema(demo: Service) -> Any:
    assert demo.api_key is not None
    with demo.client() as http:  # the agent serving and its candles stored
        wait_until(lambda: http.get("/scan", params={"market": "CRYPTO"}).status_code == 200, 90, "a scan")
    return schemathesis.openapi.from_url(f"{demo.base_url}/openapi.json", headers={"X-API-Key": demo.api_key})


@pytest.mark.timeout(900)  # ~20 requests, each a data agent call, on a loaded machine
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_generated_requests_never_get_a_server_error(analytics_schema: Any, demo: Service, path: str, method: str,
                                                     mode: GenerationMode) -> None:
    operation = analytics_schema[path][method]
    headers = {"X-API-Key": demo.api_key}
    slow: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(base_url=demo.base_url, headers=headers, timeout=60)
        if response.status_code == 503 and '"component":"data_agent"' in response.text:
            slow.append(response.text[:200])  # a TIMEOUT, or a heartbeat missed, on a loaded machine
            return
        assert response.status_code in EXPECTED[mode], f"{case.method} {case.formatted_path}: {response.text[:500]}"
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                 response_schema_conformance], headers=headers)

    check()
    assert len(slow) <= 3, f"the data agent was unavailable for {len(slow)} generated requests: {slow[:3]}"
