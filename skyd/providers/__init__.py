"""Providers: the hands of skyd on each cloud or machine pool."""
