"""The subscription set on disk survives restarts and ignores damaged entries."""

from __future__ import annotations

from pathlib import Path

from workers.ingest.subscriptions import SubscriptionFile


def test_saved_set_loads_back(tmp_path: Path) -> None:
    file = SubscriptionFile(tmp_path / "agent" / "subscriptions.json")
    assert file.load() == []
    file.save([("ETHUSDT", "1m"), ("BTCUSDT", "1d"), ("BTCUSDT", "1m")])
    assert sorted(file.load()) == [("BTCUSDT", "1d"), ("BTCUSDT", "1m"), ("ETHUSDT", "1m")]


def test_damaged_file_or_entries_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.json"
    path.write_text('{"streams": [["BTCUSDT", "1m"], ["bad symbol", "1m"], ["ETHUSDT", "7m"], 5]}')
    assert SubscriptionFile(path).load() == [("BTCUSDT", "1m")]
    path.write_text("{not json")
    assert SubscriptionFile(path).load() == []
