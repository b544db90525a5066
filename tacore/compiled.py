"""Whether the broker's core runs compiled (mypyc; see setup.py), and whether that build matches its sources.

An editable install compiles those modules in place, next to their sources, and Python imports the
compiled one first: a source edited after the build would silently not run. The build records a
hash of each source it compiled; ``verify`` compares them with the files at import and stops with
what to do, instead of running old code.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("_compiled.json")


class StaleBuildError(ImportError):
    """A compiled module no longer matches its source."""


def compiled_sources() -> dict[str, str]:
    """module -> sha256 of the source it was compiled from; empty when the core runs as Python."""
    try:
        recorded: dict[str, str] = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return recorded


def verify() -> None:
    stale = []
    for module, digest in compiled_sources().items():
        source = _PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py")
        if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() != digest:
            stale.append(str(source))
    if stale:
        raise StaleBuildError(
            f"tacore's compiled core was built from older sources than {', '.join(stale)}: reinstall "
            "(pip install -e .) to compile them again, or reinstall with TACORE_PURE_PYTHON=1 to run them as Python"
        )


def core_kind(module_file: str | None) -> str:
    """'compiled' if ``module_file`` (a module's ``__file__``) is an extension module, else 'python'."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return "compiled" if module_file is not None and module_file.endswith(suffixes) else "python"
