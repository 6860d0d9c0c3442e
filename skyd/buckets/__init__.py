"""Buckets skyd created for tasks: found by skyd's labels on each store, listed and deleted."""
