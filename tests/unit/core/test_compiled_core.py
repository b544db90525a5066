from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tacore import compiled


def _manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digests: dict[str, str]) -> None:
    manifest = tmp_path / "_compiled.json"
    manifest.write_text(json.dumps(digests))
    monkeypatch.setattr(compiled, "MANIFEST", manifest)


def test_a_build_that_matches_its_sources_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(compiled.__file__).with_name("transport.py")
    _manifest(tmp_path, monkeypatch, {"tacore.transport": hashlib.sha256(source.read_bytes()).hexdigest()})
    compiled.verify()


def test_a_source_edited_after_the_build_stops_the_import_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _manifest(tmp_path, monkeypatch, {"tacore.transport": "0" * 64})
    with pytest.raises(compiled.StaleBuildError, match=r"transport\.py.*pip install -e"):
        compiled.verify()


def test_no_manifest_means_the_core_runs_as_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "MANIFEST", tmp_path / "missing.json")
    assert compiled.compiled_sources() == {}
    compiled.verify()
    assert compiled.core_kind("/x/broker.py") == "python"
    assert compiled.core_kind("/x/broker.cpython-311-x86_64-linux-gnu.so") == "compiled"
