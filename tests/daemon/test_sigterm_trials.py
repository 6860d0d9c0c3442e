"""SIGTERM never hangs (#12): `skyd run` stopped 0.5–0.8 s after it answers exits 0 within
shutdown_budget_seconds + 1 s, with an empty store and with 100k jobs in it (a bounded
number of trials here; `python -m bench.sigterm --json` runs 100 of each)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.sigterm import BUDGET_SECONDS, run_trials

TRIALS = 5  # per store


@pytest.mark.timeout(400)
def test_sigterm_trials_exit_0_within_the_budget(tmp_path: Path) -> None:
    results = run_trials(tmp_path, TRIALS, 100_000)
    assert len(results) == 2 * TRIALS
    assert [t for t in results if not t.ok] == []
    assert {t.exit_code for t in results} == {0}


def test_a_stop_that_overruns_its_budget_is_forced_out(tmp_path: Path) -> None:
    """Whatever keeps the process (here: a main thread that never returns), the armed
    watchdog ends it with exit 0 once the budget and its grace are spent."""
    child = (
        "import time\n"
        "from skyd.watchdog import ExitWatchdog\n"
        f"ExitWatchdog({BUDGET_SECONDS / 4}).arm()\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", child], timeout=60, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60  # it did not sleep its 600 s
