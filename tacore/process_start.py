"""How the supervisor starts its children: forked from a warm template process, not spawned cold.

A spawned child is a fresh interpreter that imports TACore again: about half a second of CPU per
child, seven children at every start and one more at every worker restart. multiprocessing's
``forkserver`` imports the shared modules once, in a single-threaded process of its own
(``tacore.process_template``), and forks each child from it, so a child is running in milliseconds
and still inherits none of the supervisor's threads, sockets or locks (what makes a plain ``fork``
unsafe here). A child reads the template's environment, which is the supervisor's: TACore passes
everything a child needs as arguments and never changes its own environment after start-up.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.context import ForkServerContext
from typing import Any

import zmq

_TEMPLATE = "tacore.process_template"


def child_context() -> ForkServerContext:
    """The multiprocessing context every supervised child is started with."""
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, ForkServerContext)
    context.set_forkserver_preload([_TEMPLATE])
    return context


def run_child(target: Callable[..., None], *args: Any) -> None:
    """Run a child's ``target``, then end the way an interpreter ends, which a forked child does not.

    A forked child leaves with ``os._exit``: without ``atexit`` handlers, ``logging.shutdown`` and
    the ZeroMQ context's term, a worker's last DISCONNECT or a process's last report could still sit
    in a queue when the process vanishes. They are run here, in the order the interpreter would.
    """
    try:
        target(*args)
    finally:
        atexit._run_exitfuncs()
        context = zmq.Context._instance  # the process's shared context, if it made one
        if context is not None and not context.closed:
            context.term()  # sends what is queued, up to each socket's LINGER
        logging.shutdown()
