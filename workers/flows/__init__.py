"""The flow scheduler process (``scheduler.py``), started by ``tacore serve`` like the data agent."""
