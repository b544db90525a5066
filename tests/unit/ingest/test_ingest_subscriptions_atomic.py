"""Subscription changes are all or nothing: saved before they apply, put back when applying fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tacore.errors import ErrorCode
from workers.ingest.subscriptions import SubscriptionFile, SubscriptionsNotSaved, persist_then_apply

BEFORE = [("BTCUSDT", "1m")]
AFTER = [("BTCUSDT", "1m"), ("ETHUSDT", "1m")]


def test_the_new_set_is_saved_before_it_is_applied(tmp_path: Path) -> None:
    file = SubscriptionFile(tmp_path / "data-agent" / "subscriptions.json")
    file.save(BEFORE)
    seen: list[list[tuple[str, str]]] = []
    assert persist_then_apply(file, BEFORE, AFTER, lambda: seen.append(file.load()) or "applied") == "applied"
    assert seen == [AFTER] and file.load() == AFTER


def test_a_failed_apply_puts_the_saved_set_back(tmp_path: Path) -> None:
    file = SubscriptionFile(tmp_path / "subscriptions.json")
    file.save(BEFORE)

    def apply() -> None:
        raise RuntimeError("the feed refused")

    with pytest.raises(RuntimeError):
        persist_then_apply(file, BEFORE, AFTER, apply)
    assert file.load() == BEFORE


def test_a_disk_that_refuses_the_save_changes_nothing_and_is_retryable_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    file = SubscriptionFile(blocker / "subscriptions.json")
    applied: list[bool] = []
    with pytest.raises(SubscriptionsNotSaved) as info:
        persist_then_apply(file, BEFORE, AFTER, lambda: applied.append(True))
    assert applied == [] and not list(tmp_path.glob("**/*.tmp"))
    assert info.value.code is ErrorCode.UNAVAILABLE and info.value.retryable
    assert str(blocker / "subscriptions.json") in info.value.message and info.value.details["errno"] == "EEXIST"
