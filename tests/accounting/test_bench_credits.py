"""bench.credits runs end to end on a small lab and reports both placers' books as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_credits_prints_one_json_object_with_both_placers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.credits", "--weeks", "4", "--jobs-per-week", "6",
         "--users", "4", "--time-limit", "0.5", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["jobs"] == 24
    for name in ("skyd", "greedy"):
        books = result[name]
        assert books["jobs_never_placed"] == 0
        spent = books["credit_used"] + books["credit_expired_unused"]
        # every granted dollar is either used or expires (all pools expire within the year)
        assert abs(spent - result["credit_granted"]) < 0.01
    assert isinstance(result["goal_met"], bool)
