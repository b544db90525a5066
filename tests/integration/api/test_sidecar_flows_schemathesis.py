"""Schemathesis over the flow endpoints of the running sidecar's own OpenAPI schema, with ``API_KEY`` set.

Its CLI generates valid and invalid input for every flow operation (tag ``flows``: ``/flows``, ``/nodes``,
``/stats``) in all its phases and runs every check but one: no 5xx, no status code the schema does not list,
bodies, content types and headers as declared, invalid input refused. Left out: ``positive_data_acceptance``
(schema-valid input accepted), since a flow definition is validated as a whole by the scheduler (types,
configs, edges, cycles: a 422 with pointers) and generated ids name flows that do not exist (a 404). The
service is ``tacore serve --demo``: the real scheduler, pool and data agent behind the sidecar. A generated
``/nodes/execute`` runs real node code on one of two busy pool workers (a price node waits on the data agent,
which is backfilling; 24 s was seen on a loaded box): the client waits longer than the sidecar's own 30 s
deadline, so a slow node shows as the documented 503, never as a client-side timeout or a time-limit failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .sidecar_helpers import Service

#: examples per operation and phase: enough to reach every keyword's edges, few enough for 2 shared cores
MAX_EXAMPLES = 25


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_error_on_the_flow_endpoints(flow_service: Service, tmp_path: Path) -> None:
    service = flow_service
    with service.client() as http:  # something for the generated calls to find besides 404s
        http.post("/flows/execute", json={"flow_id": "fuzzed", "flow_json": {"nodes": [
            {"id": "a", "type": "action_node", "config": {"action": "collect_real_time_data"}}]}})
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{service.base_url}/openapi.json",
        "--header", f"X-API-Key: {service.api_key}", "--include-tag", "flows",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance", "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1", "--seed", "13", "--request-timeout", "45", "--max-response-time", "40",
        "--generation-database", "none",
        "--report", "junit", "--report-junit-path", str(tmp_path / "schemathesis.xml"), "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=860, cwd=tmp_path, check=False)
    (tmp_path / "schemathesis.out").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]


def test_the_schema_documents_every_flow_route_with_its_errors(flow_service: Service) -> None:
    service = flow_service
    with service.client() as http:
        document = http.get("/openapi.json").json()
    assert httpx.get(f"{service.base_url}/openapi.json").status_code == 401
    expected = {
        ("post", "/flows/execute"), ("get", "/flows"), ("get", "/flows/{flow_id}/status"),
        ("get", "/flows/{flow_id}/cycles"), ("get", "/flows/{flow_id}/cycles/{cycle}"),
        ("post", "/flows/{flow_id}/cycles"), ("post", "/flows/{flow_id}/cycles/{cycle}/retry"),
        ("post", "/flows/{flow_id}/stop"), ("post", "/flows/{flow_id}/cycles/{cycle}/stop"),
        ("post", "/flows/{flow_id}/cycles/{cycle}/components/{component}/stop"), ("get", "/flows/{flow_id}/logs"),
        ("post", "/nodes/execute"), ("get", "/nodes/{node_id}/status"), ("post", "/nodes/{node_id}/stop"),
        ("get", "/nodes/types"),
        ("get", "/stats"),
    }
    found = {(m, p) for p, ops in document["paths"].items() for m, op in ops.items() if "flows" in op.get("tags", [])}
    assert found == expected
    for method, path in expected:
        operation = document["paths"][path][method]
        codes = set(operation["responses"])
        assert {"200", "401", "422", "502", "503"} <= codes, (method, path, codes)
        assert operation.get("security"), (method, path)
        if "{" in path:
            assert "404" in codes, (method, path, codes)
        if method == "post":
            assert "400" in codes, (method, path, codes)
    execute = document["paths"]["/flows/execute"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert execute["$ref"].endswith("/FlowDefinition")
    assert "flow_json" in document["components"]["schemas"]["FlowDefinition"]["properties"]
