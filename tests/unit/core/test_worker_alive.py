"""Liveness files (WORKER_ALIVE_DIR): touched at most once per interval, read by `tacore worker-health`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tacore.cli import main
from workers.alive import AliveMark, check, prepare


def test_a_mark_touches_its_file_at_most_once_per_interval(tmp_path: Path) -> None:
    mark = AliveMark(tmp_path / "w1", interval_s=1.0)
    mark.touch(now=100.0)
    os.utime(tmp_path / "w1", (1.0, 1.0))
    mark.touch(now=100.5)  # within the interval: left alone
    assert (tmp_path / "w1").stat().st_mtime == 1.0
    mark.touch(now=101.0)
    assert (tmp_path / "w1").stat().st_mtime > 1.0


def test_healthy_only_when_every_worker_file_is_fresh(tmp_path: Path) -> None:
    assert not check(tmp_path, 4.0).healthy  # nobody heard the broker yet
    for name in ("host-w1", "host-w2"):
        (tmp_path / name).touch()
    now = (tmp_path / "host-w1").stat().st_mtime
    assert check(tmp_path, 4.0, now=now + 1).healthy
    os.utime(tmp_path / "host-w2", (now - 10, now - 10))
    report = check(tmp_path, 4.0, now=now + 1)
    assert not report.healthy and any("host-w2" in line and "over 4 s" in line for line in report.lines)
    assert not check(tmp_path / "missing", 4.0).healthy


def test_prepare_drops_the_files_of_an_earlier_run(tmp_path: Path) -> None:
    (tmp_path / "alive").mkdir()
    (tmp_path / "alive" / "old-w3").touch()
    prepare(tmp_path / "alive")
    assert list((tmp_path / "alive").iterdir()) == []


def test_worker_health_exits_0_or_1_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORKER_ALIVE_DIR", str(tmp_path))
    assert main(["worker-health"]) == 1
    assert "no worker has heard the broker" in capsys.readouterr().err
    (tmp_path / "w1").touch()
    assert main(["worker-health"]) == 0
    assert "w1: broker heard" in capsys.readouterr().out
    monkeypatch.delenv("WORKER_ALIVE_DIR")
    assert main(["worker-health"]) == 2


def test_an_unusable_alive_dir_stops_the_start_with_its_name(tmp_path: Path) -> None:
    from tacore.errors import ConfigError

    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="WORKER_ALIVE_DIR"):
        prepare(tmp_path / "file" / "alive")
