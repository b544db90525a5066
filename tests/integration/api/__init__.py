"""The sidecar's tests against real services: a package, so that its shared stacks (``package``-scoped fixtures in
``conftest.py``) stop when its last test ends instead of running beside the rest of the suite."""
