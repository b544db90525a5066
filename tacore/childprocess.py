"""What every supervised child process does first.

It names itself (``name_process``), leaves the terminal's process group, so a Ctrl-C reaches only
the supervisor (which then stops the children in order), and asks the kernel for SIGTERM should the
supervisor die, so no orphan keeps a port or the chDB directory.

A child's parent is the template it was forked from (``tacore.process_start``), not the supervisor,
so the SIGTERM comes when the template ends. multiprocessing's forkserver ends when no process holds
the write end of its "alive" pipe any more, and it hands that end to every child it forks: while
the children lived the template never ended, and a ``kill -9`` of ``tacore serve`` left the broker,
the workers and the recorder running, with their ports. Each child lets go of it, so the template
ends with the supervisor and every child is told.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def become_supervised_child() -> None:
    os.setpgrp()
    _let_go_of_the_template()
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


def _let_go_of_the_template() -> None:
    """Close this child's copy of the forkserver's "alive" pipe (TACore's children start no children of their own
    through the template, the one use of it)."""
    from multiprocessing import forkserver

    server: Any = getattr(forkserver, "_forkserver", None)  # private: the pipe has no public handle
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def name_process(name: str) -> None:
    """Show this process as ``tacore: NAME`` in ps, top and /proc/PID/cmdline (instead of
    ``python3 -B -c from multiprocessing.spawn ...``), so an operator can tell the processes apart."""
    import setproctitle

    setproctitle.setproctitle(f"tacore: {name}")
