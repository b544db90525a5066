"""One module per route group of the sidecar."""
