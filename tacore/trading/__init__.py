"""The trading domain: orders, fills, positions and balances (``model``), where orders go (``venues``),
where they are kept (``ledger``), and the engine that ties them (intent -> venue -> record).

Nothing here imports ZeroMQ, FastAPI or the worker runtime: the order process and the sidecar call in.
"""
