"""Real small file systems for disk-fault tests: a tmpfs mounted for the test, to fill up or mount read-only.

Mounting needs root (the tests skip, saying so, without it). A tmpfs is a real file system: writes past
its size fail with ENOSPC in the kernel, exactly like a full disk, and a read-only mount refuses them
with EROFS, even for root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MiB mounted at ``path`` for the duration; unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_mb}m,mode=0755" + (",ro" if read_only else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in ``directory`` until its file system is full (ENOSPC); returns the file (delete it to
    free the space)."""
    filler = directory / name
    chunk = b"\0" * (256 * 1024)
    with filler.open("ab", buffering=0) as handle:
        for size in (len(chunk), 4096, 512):  # big chunks, then every byte left
            try:
                while True:
                    handle.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


def remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
