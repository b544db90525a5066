"""Benchmark cases of the analytics methods (issue 12 §7), each runnable alone or from bench_analytics.py."""
