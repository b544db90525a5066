"""Builds TACore's compiled core: the broker's per-request path, compiled with mypyc.

Everything else about the package is in pyproject.toml. The modules below are plain, typed
Python; compiled, they cost the broker about an eighth less CPU per request
(``benchmarks/bench_broker.py``). They run as Python when compiling is off
(``TACORE_PURE_PYTHON=1``) or impossible (no C compiler): the build then says so and installs the
sources alone. ``tacore/compiled.py`` records what was compiled from which source, so a source
edited after the build is caught at import instead of silently running the old code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
COMPILED = [
    "tacore/transport.py",
    "tacore/protocol/envelope.py",
    "tacore/protocol/worker.py",
    "tacore/broker/answers.py",
    "tacore/broker/broker.py",
    "tacore/broker/broker_methods.py",
    "tacore/broker/client_requests.py",
    "tacore/broker/dedupe.py",
    "tacore/broker/inflight.py",
    "tacore/broker/queue.py",
    "tacore/broker/records.py",
    "tacore/broker/registration.py",
    "tacore/broker/stats.py",
    "tacore/broker/worker_loss.py",
    "tacore/broker/worker_messages.py",
    "tacore/broker/workers.py",
]
MANIFEST = "tacore/_compiled.json"


class OptionalMypycBuild(build_ext):  # type: ignore[misc]
    """Compile when possible; otherwise remove every partial output and keep the pure-Python package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers, a mypyc limitation: the sources still work
            self._remove_outputs()
            print(f"tacore: compiling the broker core failed ({exc}); installing it as plain Python",
                  file=sys.stderr)
            return
        target = Path(MANIFEST) if self.inplace else Path(self.build_lib) / MANIFEST
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({
            path[:-3].replace("/", "."): hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in COMPILED
        }, indent=1))

    def _remove_outputs(self) -> None:
        for output in self.get_outputs():
            Path(output).unlink(missing_ok=True)
        if self.build_temp:
            shutil.rmtree(self.build_temp, ignore_errors=True)


def _ext_modules() -> list[Any]:
    if os.environ.get("TACORE_PURE_PYTHON") == "1":
        _remove_in_place_build()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("tacore: mypyc is not available; installing the broker core as plain Python", file=sys.stderr)
        return []
    # Not the project's strict mypy settings: the build environment has none of the dependencies, so
    # mypyc sees them as Any (CI's mypy run checks the types).
    options = ["--config-file=", "--ignore-missing-imports", "--no-error-summary"]
    return list(mypycify([*options, *COMPILED], opt_level="3", debug_level="0", group_name="tacore._core"))


SHARED_LIBRARY = "tacore/_core__mypyc"  # what mypyc builds for group_name "tacore._core"


def _remove_in_place_build() -> None:
    """An earlier editable install's compiled modules would still shadow the sources: remove them."""
    for stem in [path.removesuffix(".py") for path in COMPILED] + [SHARED_LIBRARY]:
        built = ROOT / stem
        for extension in built.parent.glob(built.name + ".cpython-*"):
            extension.unlink()
    (ROOT / MANIFEST).unlink(missing_ok=True)


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalMypycBuild})
