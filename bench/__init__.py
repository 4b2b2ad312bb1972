"""Benchmarks: scripts that print figures (medians, ratios against a baseline run alongside)."""
