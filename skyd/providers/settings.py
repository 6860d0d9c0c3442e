"""Checks the lab providers' config tables share: unknown settings and names given twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def reject_unknown(raw: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Raise ValueError naming every key of `raw` not in `allowed` (a typo, most likely)."""
    allowed = set(allowed)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def reject_duplicates(names: Sequence[str], where: str, what: str) -> None:
    """Raise ValueError naming every name that stands more than once in `names`."""
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: duplicate {what} name(s) {', '.join(dupes)}")
