"""Cluster names: short, DNS-like, so they fit in every cloud's tags and in a shell."""

from __future__ import annotations

import re

from skyd.errors import SpecError

_NAME = re.compile(r"[a-z][a-z0-9-]{0,61}[a-z0-9]|[a-z]")


def check_cluster_name(name: str) -> str:
    """`name` if it is valid, else a SpecError saying what a valid one looks like."""
    if not _NAME.fullmatch(name):
        raise SpecError(
            f"cluster name {name!r} is not valid: use 1-63 lower-case letters, digits and "
            "dashes, starting with a letter and not ending with a dash (e.g. dev-a100)",
            field="name",
        )
    return name
