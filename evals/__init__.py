"""Offline evaluation suite: per-case metrics, aggregation and paired comparison of runs."""
