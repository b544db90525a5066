"""Schemathesis over the running sidecar's own OpenAPI schema, with ``API_KEY`` set.

Its CLI (the same engine as ``schemathesis run`` anywhere) generates valid and invalid input for every
operation — query values, bodies, a missing or wrong key — in all its phases, and runs every check:
no 5xx, no status code the schema does not list (401, 422, 503 included), bodies, content types and
headers as declared, invalid input refused, valid input accepted. The sidecar is the real one of
``tacore serve`` (session fixture ``service``), with the stand-in data agent behind it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .sidecar_helpers import Service

#: examples per operation and phase: enough to reach every keyword's edges, few enough for 2 shared cores
MAX_EXAMPLES = 30
ANALYTICS_PATHS = r"^/(scan|risk|analysis/)"
#: the flow routes need the flow scheduler and its node types: test_sidecar_flows_fuzz runs them against one
FLOW_PATHS = r"^/(flows|nodes|stats)"
#: the order routes need a priced order process: test_sidecar_orders fuzzes them against one
ORDER_PATHS = r"^/(orders|positions|balances)"


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(service: Service, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{service.base_url}/openapi.json",
        "--header", f"X-API-Key: {service.api_key}", "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1", "--seed", "13", "--request-timeout", "15", "--generation-database", "none",
        "--report", "junit", "--report-junit-path", str(tmp_path / "schemathesis.xml"), "--no-color",
        # the analytics routes need the real data agent (the stand-in serves no scan, risk or analysis):
        # test_sidecar_analytics_fuzz runs them against the demo's
        "--exclude-path-regex", f"{ANALYTICS_PATHS}|{FLOW_PATHS}|{ORDER_PATHS}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=560, cwd=tmp_path, check=False)
    (tmp_path / "schemathesis.out").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]


def test_the_schema_documents_the_key_and_the_error_statuses(service: Service) -> None:
    with service.client() as http:
        document = http.get("/openapi.json").json()
    assert httpx.get(f"{service.base_url}/openapi.json").status_code == 401
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            open_to_all = path in ("/health", "/ping")
            assert open_to_all == (not operation.get("security")) or path == "/", (method, path)
            if not open_to_all:  # the dashboard page checks its key (or cookie) itself: it answers 401 too
                assert "401" in codes, (method, path, codes)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in codes, (method, path, codes)
