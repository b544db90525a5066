"""``tacore keys``: generate, list, revoke, and the errors it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tacore.cli import main


def _keys(tmp_path: Path, *args: str) -> int:
    return main(["keys", "--keys-dir", str(tmp_path / "keys"), *args])


def test_generate_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _keys(tmp_path, "generate", "desk", "--role", "trade") == 0
    assert _keys(tmp_path, "generate", "gpu-box", "--worker") == 0
    assert _keys(tmp_path, "generate", "viewer") == 0  # read by default: least privilege
    out = capsys.readouterr().out
    assert "CLIENT_KEY=" in out and "WORKER_KEY=" in out and str(tmp_path / "keys" / "desk.key_secret") in out
    assert _keys(tmp_path, "revoke", "desk") == 0
    capsys.readouterr()
    assert _keys(tmp_path, "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    keys = {k["name"]: k for k in listing["keys"]}
    assert listing["server_key"] and len(listing["server_key"]) == 40
    assert keys["desk"]["role"] == "trade" and keys["desk"]["active"] is False
    assert keys["gpu-box"]["kind"] == "worker" and keys["gpu-box"]["role"] is None
    assert keys["viewer"]["role"] == "read" and keys["viewer"]["active"] is True
    assert _keys(tmp_path, "list") == 0
    table = capsys.readouterr().out
    assert "revoked" in table and listing["server_key"] in table


def test_errors_exit_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _keys(tmp_path, "revoke", "ghost") == 2
    assert "no active key named 'ghost'" in capsys.readouterr().err
    assert _keys(tmp_path, "generate", "a", "--role", "read") == 0
    assert _keys(tmp_path, "generate", "a", "--role", "read") == 2
    assert "exists" in capsys.readouterr().err


def test_ensure_makes_a_key_once_then_keeps_it_and_remakes_a_revoked_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere" / "w.key_secret"
    assert _keys(tmp_path, "ensure", "box", "--worker", "--out", str(out)) == 0
    made = capsys.readouterr().out
    assert made.startswith("made worker key 'box'") and str(out) in made and out.is_file()
    assert _keys(tmp_path, "ensure", "box", "--worker", "--out", str(out)) == 0
    kept = capsys.readouterr().out
    assert kept.startswith("kept worker key 'box'") and made.split("(")[1] == kept.split("(")[1]
    assert _keys(tmp_path, "revoke", "box") == 0
    capsys.readouterr()
    assert _keys(tmp_path, "ensure", "box", "--worker", "--out", str(out)) == 0
    remade = capsys.readouterr().out
    assert remade.startswith("made worker key 'box'") and remade.split("(")[1] != made.split("(")[1]


def test_ensure_never_replaces_a_key_of_another_kind_or_role(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _keys(tmp_path, "ensure", "desk", "--role", "trade") == 0
    assert _keys(tmp_path, "ensure", "desk", "--role", "admin") == 2
    assert "exists as a client key with role trade" in capsys.readouterr().err
    assert _keys(tmp_path, "ensure", "desk", "--worker") == 2
