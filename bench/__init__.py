"""Benchmarks: scripts printing figures and ratios side by side (see each module)."""
