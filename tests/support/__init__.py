"""Helpers shared by the integration tests: free ports, real TACore processes, test-only workers."""
