"""Imported once by the process every child is forked from (``tacore.process_start``).

It names that process and imports what most children would otherwise import again each: the
settings, the wire protocol, ZeroMQ, SQLAlchemy and pydantic through the worker runtime, the
recorder and the broker. Heavy modules only one child uses (chDB, FastAPI, TA-Lib) stay out: the
template would carry them for every child.
"""

from __future__ import annotations

from tacore.childprocess import name_process

name_process("process-template")

import tacore.broker.broker  # noqa: E402
import tacore.recorder  # noqa: E402
import tacore.settings  # noqa: E402,F401
import workers.runtime  # noqa: E402,F401
