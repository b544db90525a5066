"""What every supervised child process does first.

It names itself (``name_process``), leaves the terminal's process group, so a Ctrl-C reaches only
the supervisor (which then stops the children in order), and asks the kernel for SIGTERM should the
supervisor die, so no orphan keeps a port or the chDB directory.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def become_supervised_child() -> None:
    os.setpgrp()
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


def name_process(name: str) -> None:
    """Show this process as ``tacore: NAME`` in ps, top and /proc/PID/cmdline (instead of
    ``python3 -B -c from multiprocessing.spawn ...``), so an operator can tell the processes apart."""
    import setproctitle

    setproctitle.setproctitle(f"tacore: {name}")
