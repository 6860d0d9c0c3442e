"""Trace-driven simulator of deadline-aware spot policies (`python -m bench.spot`)."""
