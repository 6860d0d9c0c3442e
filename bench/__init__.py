"""Benchmarks: plain scripts run as `python -m bench.<name>`, reporting medians and ratios."""
