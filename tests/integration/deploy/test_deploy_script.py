"""``deploy.sh`` for the local deployment, run as a user would in a copy of the checkout: up (banner),
status (a health.check through the broker), down (the closing summary), and a reinstall once the
checkout changes. The copy's ``.venv`` borrows this environment's ``tacore`` so nothing is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_ports
from tests.support.processes import ROOT

pytestmark = pytest.mark.timeout(240)


def checkout_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    bin_dir = copy / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "tacore").symlink_to(Path(sys.executable).parent / "tacore")
    return copy


def deploy(copy: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(copy / "deploy.sh"), *args], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=180)


def fingerprint(copy: Path) -> str:
    script = 'source <(sed -n "/^source_fingerprint()/,/^}/p" deploy.sh); source_fingerprint'
    return subprocess.run(["bash", "-c", script], cwd=copy, capture_output=True, text=True, check=True).stdout.strip()


def test_local_up_status_down_and_a_changed_checkout_is_reinstalled(tmp_path: Path) -> None:
    copy = checkout_copy(tmp_path)
    (copy / ".venv" / ".tacore-source").write_text(fingerprint(copy) + "\n")  # "installed from this checkout"
    names = ("ZMQ_FRONTEND_PORT", "ZMQ_BACKEND_PORT", "EVENTS_PORT", "RECORDER_PORT", "API_PORT")
    env = {**os.environ, **dict(zip(names, map(str, free_ports(5)), strict=True)), "WORKER_COUNT": "1"}
    env.pop("REDIS_URL", None)
    try:
        up = deploy(copy, "up", "--no-data-agent", "--no-api", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "reinstalling" not in up.stdout and " is ready (" in up.stdout
        assert f"tcp://127.0.0.1:{env['ZMQ_FRONTEND_PORT']}" in up.stdout
        again = deploy(copy, "up", env=env)
        assert again.returncode != 0 and "already running" in again.stderr
        status = deploy(copy, "status", env=env)
        assert status.returncode == 0 and "health.check through the broker: ok" in status.stdout, status.stdout
        assert "tacore: broker" in status.stdout and "tacore: worker w1" in status.stdout
    finally:
        down = deploy(copy, "down", env=env)
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith("TACore stopped after") and "restarts" in down.stdout
    assert deploy(copy, "status", env=env).returncode == 3

    with (copy / "tacore" / "cli.py").open("a") as cli:
        cli.write("\n# an edit after the install\n")
    changed = deploy(copy, "up", env=env)  # the copy's .venv has no pip: the reinstall is tried and fails
    assert "the checkout changed since the last install; reinstalling" in changed.stdout
    assert changed.returncode != 0 and "tacore serve started" not in changed.stdout
