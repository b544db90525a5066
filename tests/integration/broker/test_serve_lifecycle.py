"""``tacore serve`` as a user runs it: starts everything, stops everything on SIGTERM/SIGINT, exit code 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.support.processes import TACoreProcess


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_every_child_and_exits_zero(tacore_factory: Callable[..., TACoreProcess], sig: int) -> None:
    tacore = tacore_factory()
    tacore.wait_healthy(workers=2)
    assert tacore.proc is not None
    children = psutil.Process(tacore.proc.pid).children(recursive=True)
    assert len(children) >= 4  # recorder, broker, two workers (and multiprocessing's tracker)
    code = tacore.stop(sig)
    assert code == 0, tacore.output()[-3000:]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"children left running: {alive}"
    logs = Path(tacore.env["LOG_DIR"])
    assert "tacore stopped" in (logs / "tacoreservice.log").read_text()
    assert "worker w1 stopped" in (logs / "worker.log").read_text()


def test_bad_setting_stops_start_up_with_a_message_naming_it(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tacore", "serve"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "WORKER_COUNT": "zero"}, timeout=30)
    assert result.returncode == 2
    assert "WORKER_COUNT" in result.stderr
