"""`skyd demo` (what `./bootstrap demo` runs) end to end: every example job succeeds, from a
working directory other than the repository's (relative task paths are the examples' own)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_every_example_to_success(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "skyd", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all 4 example jobs SUCCEEDED; the daemon stopped cleanly" in proc.stdout
    # the spot job's story: recovered after preemptions, its run time summed over attempts
    assert re.search(r"run time +\S+ over [2-9] attempts", proc.stdout), proc.stdout[-3000:]
