"""The compose deployment's key steps, run for real without a Docker engine: the `keys` service's command (at
every `up`: it keeps what it made), `tacore serve` bound to 0.0.0.0 with keys on as the tacore service runs
it, the image's and the tacore service's healthchecks through that keyed broker, and a worker with the worker
service's settings, which registers with its key and turns `tacore worker-health` healthy (and unhealthy once
its key is revoked). The containers' paths (/data, /keys, /tmp/tacore-alive) map to temporary directories.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clients import CurveKeys, LazyPirateClient
from tacore.auth.keyring import Keyring
from tests.support.compose import COMPOSE, compose_config
from tests.support.processes import ROOT, TACoreProcess, wait_until

pytestmark = pytest.mark.timeout(240)


def compose_services() -> dict[str, Any]:
    result = compose_config(COMPOSE, "--format", "json")
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = json.loads(result.stdout)["services"]
    return services


@dataclass
class Deployment:
    services: dict[str, Any]
    root: Path  # the containers' "/" for the paths that matter
    tacore: TACoreProcess
    keys_runs: list[subprocess.CompletedProcess[str]]

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def host_env(self, service: str) -> dict[str, str]:
        """The service's TACore settings that name paths, mapped onto this machine, plus the test's ports/dirs."""
        env = {k: str(v) for k, v in self.services[service]["environment"].items()
               if k in ("BROKER_CURVE", "HEARTBEAT_INTERVAL_MS", "WORKER_KEY", "WORKER_ALIVE_DIR")}
        for name in ("WORKER_KEY", "WORKER_ALIVE_DIR"):
            if name in env:
                env[name] = str(self.path(env[name]))
        return env

    def run(self, command: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert command[0] == "tacore"
        return subprocess.run([sys.executable, "-m", "tacore", *command[1:]], capture_output=True, text=True,
                              env={**self.tacore.env, **env}, cwd=self.tacore.workdir, timeout=timeout)

    def admin(self) -> LazyPirateClient:
        keys = CurveKeys.load(Keyring(self.path("/data/keys")).secret_file("local-admin"))
        return LazyPirateClient(self.tacore.frontend, timeout_ms=5000, retries=0, curve=keys)


def run_keys_service(services: dict[str, Any], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [part.replace("/keys/", f"{root}/keys/") for part in services["keys"]["command"]]
    return subprocess.run([sys.executable, "-m", "tacore", *command[1:]], capture_output=True, text=True,
                          env={**os.environ, **env, "DATA_DIR": str(root / "data")}, cwd=root, timeout=60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    services = compose_services()
    root = tmp_path_factory.mktemp("compose")
    keys_runs = [run_keys_service(services, root, {}) for _ in range(2)]  # two `docker compose up`s
    tacore_env = {k: str(v) for k, v in services["tacore"]["environment"].items()
                  if k in ("BROKER_CURVE", "BIND_ADDRESS", "HEARTBEAT_INTERVAL_MS")}
    command = services["tacore"]["command"]
    assert command[:2] == ["tacore", "serve"]
    proc = TACoreProcess(root, [*command[1:], "--no-data-agent", "--no-api"],
                         env={**tacore_env, "DATA_DIR": str(root / "data")}).start()
    deployment = Deployment(services, root, proc, keys_runs)
    try:
        def ready() -> bool:
            assert proc.proc is not None and proc.proc.poll() is None, proc.output()[-3000:]
            return " is ready (" in proc.output()

        wait_until(ready, 90, "tacore serve with keys on", interval=0.1)
        yield deployment
    except BaseException:
        sys.stderr.write(proc.output()[-4000:])
        raise
    finally:
        proc.stop()


def test_the_keys_service_makes_the_worker_key_once_and_keeps_it(deployment: Deployment) -> None:
    first, second = deployment.keys_runs
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.startswith("made worker key") and second.stdout.startswith("kept worker key")
    assert first.stdout.split("(")[1] == second.stdout.split("(")[1]  # the same public key
    worker_key = Path(deployment.host_env("worker")["WORKER_KEY"])
    assert stat.S_IMODE(worker_key.stat().st_mode) == 0o600
    assert [p.name for p in worker_key.parent.iterdir()] == [worker_key.name]  # nothing else in worker-key
    keyring = Keyring(deployment.path("/data/keys"))
    assert keyring.server_secret_file.is_file()
    assert CurveKeys.load(worker_key).server_key == keyring.server_keys()[0]


def test_the_broker_binds_all_interfaces_with_keys_on(deployment: Deployment) -> None:
    assert deployment.tacore.env["BIND_ADDRESS"] == "0.0.0.0"
    assert "INSECURE" not in deployment.tacore.output()
    with deployment.admin() as admin:
        status = admin.call("broker.status")
    assert status["auth"] == "curve" and status["live_workers"] >= 1


@pytest.mark.parametrize("source", ["Dockerfile", "compose"])
def test_the_healthchecks_pass_through_the_keyed_broker(deployment: Deployment, source: str) -> None:
    if source == "Dockerfile":
        lines = (ROOT / "Dockerfile").read_text().splitlines()
        env_line = next(line for line in lines if line.strip().startswith("BROKER_CURVE="))
        assert env_line.strip().rstrip("\\").strip() == "BROKER_CURVE=true"  # the image's default
        at = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK "))
        command = json.loads(lines[at + 1].strip().removeprefix("CMD "))
    else:
        test = deployment.services["tacore"]["healthcheck"]["test"]
        assert test[0] == "CMD"
        command = test[1:]
    result = deployment.run(command, {"BROKER_CURVE": "true"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"]["status"] == "healthy"


def test_a_worker_container_joins_with_its_key_and_its_healthcheck_follows_the_broker(
        deployment: Deployment, tmp_path: Path) -> None:
    env = deployment.host_env("worker")
    health = deployment.services["worker"]["healthcheck"]["test"][1:]
    Path(env["WORKER_ALIVE_DIR"]).mkdir(parents=True, exist_ok=True)
    before = deployment.run(health, env)
    assert before.returncode == 1 and "no worker has heard the broker" in before.stderr

    command = deployment.services["worker"]["command"]
    assert command[:4] == ["tacore", "worker", "--connect", "tcp://tacore:5556"]
    command = [*command[:3], deployment.tacore.backend, *command[4:]]
    worker = TACoreProcess(tmp_path / "worker", command[1:], ports=deployment.tacore.ports, env=env).start()
    try:
        wait_until(lambda: deployment.run(health, env).returncode == 0, 60, "worker-health healthy")
        with deployment.admin() as admin:
            mine = [w for w in admin.call("broker.status")["workers"]
                    if w["state"] != "dead" and w["worker_id"].endswith("-w1") and w["key"] == "compose-worker"]
        assert mine, "the broker does not list the container's worker under its key"

        Keyring(deployment.path("/data/keys")).revoke("compose-worker")
        wait_until(lambda: deployment.run(health, env).returncode == 1, 30, "worker-health unhealthy after revoke")
        # the next `up` runs the keys service again: a new key, and the worker needs a restart to use it
        again = run_keys_service(deployment.services, deployment.root, {})
        assert again.returncode == 0 and again.stdout.startswith("made worker key"), again.stderr
    finally:
        worker.stop()
