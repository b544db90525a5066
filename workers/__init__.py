"""Worker side of TACore: the worker runtime, method registration, method handlers and the data agent."""
