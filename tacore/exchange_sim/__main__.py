"""``python -m tacore.exchange_sim``: the simulator CLI without going through ``tacore``."""

from __future__ import annotations

from tacore.exchange_sim.server import main

raise SystemExit(main())
