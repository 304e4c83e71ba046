"""Benchmarks: the current pygwire against pygwire 0.2.0 (see README.md)."""
