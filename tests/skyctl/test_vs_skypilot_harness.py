"""bench.vs_skypilot's harness without SkyPilot: a pair of whole commands gets a ratio only
when both succeeded, a failing side's error is kept instead, and a process tree's memory is
summed over its descendants."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.vs_skypilot import pair, tree_memory

ENV = dict(os.environ)


def test_a_failing_side_reports_its_error_and_no_ratio() -> None:
    ok = [sys.executable, "-c", "pass"]
    fails = [sys.executable, "-c", "import sys; print('no catalog here'); sys.exit(3)"]
    both = pair(ok, ok, 2, ENV, ENV, "/")
    assert both["wall_ratio_skyctl_to_skypilot"] > 0 and "skypilot_error" not in both
    broken = pair(ok, fails, 2, ENV, ENV, "/")
    assert broken["skypilot_exit_codes"] == [3]
    assert broken["skypilot_error"] == "no catalog here"
    assert "wall_ratio_skyctl_to_skypilot" not in broken


def test_tree_memory_counts_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alone = tree_memory(child.pid)
        mine = tree_memory(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert alone["processes"] == 1 and alone["pss_mib"] > 0
    assert mine["processes"] >= 2 and mine["rss_mib"] >= alone["rss_mib"]
