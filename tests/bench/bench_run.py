"""Runs one benchmark module as a user does (`python -m bench.NAME ... --json`) and parses it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_bench(name: str, *args: str, timeout: float = 120) -> Any:
    """The one JSON object the benchmark printed on stdout; its stderr if it failed."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args, "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"bench.{name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout)


def positive(value: object) -> bool:
    """A measured time or ratio: a real number above zero (not NaN, not infinite)."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0
