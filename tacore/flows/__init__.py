"""Flows: DAGs of nodes run on the worker pool in cycles (docs/flows.md).

``model`` parses and validates flow definitions; ``nodes`` holds the node types; ``core`` is the
scheduler's pure state machine; ``store`` its durable history (``tables``, ``rows``, ``writer``,
``queries``); ``scheduler`` the process.
"""
