"""Regression (#12): a restarted daemon resumes the sim market's replay where wall-clock time
says it is; it used to rewind to its start offset on every start."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from skyd.clock import VirtualClock
from skyd.daemon_providers import build_providers
from skyd.providers.sim import SimProvider
from skyd.testing.daemon import settings_for_tests

ROW_SECONDS = 10
AVAILABLE = [1, 1, 0, 0, 1, 1, 0, 1]


def write_trace(root: Path) -> Path:
    root.mkdir()
    start = dt.datetime(2026, 1, 1)
    stamps = [
        (start + dt.timedelta(seconds=ROW_SECONDS * i)).strftime("%Y-%m-%d %H:%M:%S")
        for i in range(len(AVAILABLE))
    ]
    lines = ["date,availability", *(f"{s},{v}" for s, v in zip(stamps, AVAILABLE, strict=True))]
    (root / "z1.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "name": "resume",
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": 3.0,
        "zones": {"z1": {"region": "r1", "availability_file": "z1.csv", "spot_price": 1.0}},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def _sim(settings: object, clock: VirtualClock) -> SimProvider:
    sim = build_providers(settings, clock)["sim"]  # type: ignore[arg-type]
    assert isinstance(sim, SimProvider)
    return sim


def test_a_restarted_daemon_resumes_the_replay_where_the_clock_says(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(tmp_path / "trace")
    settings.sim.speedup = 1.0
    settings.sim.start_offset_seconds = ROW_SECONDS  # the first start begins at row 1
    clock = VirtualClock(1_800_000_000.0)
    first = _sim(settings, clock)
    assert first.replay.current_row() == 1 and first.replay.available("z1")

    clock.set(clock.now() + 15)  # the daemon stops here, and starts again:
    second = _sim(settings, clock)
    assert second.replay.current_row() == 2  # not row 1 again
    assert not second.replay.available("z1")
    assert second.replay.next_change_at("z1") == first.replay.next_change_at("z1")

    clock.set(clock.now() + 3600)  # long after the trace's end its last values hold
    assert _sim(settings, clock).replay.current_row() == len(AVAILABLE) - 1


def test_a_replay_set_up_differently_starts_afresh(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(tmp_path / "trace")
    settings.sim.speedup = 1.0
    clock = VirtualClock(1_800_000_000.0)
    _sim(settings, clock)
    clock.set(clock.now() + 25)
    settings.sim.speedup = 2.0  # another replay: it starts at its offset, now
    assert _sim(settings, clock).replay.current_row() == 0
