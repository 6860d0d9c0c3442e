"""A daemon whose `sim` cloud replays a spot trace written by the test, in real time.

Two zones of one region: `sim-a` has the spot capacity the test gives row by row, `sim-b`
never has any (and is cheaper, so a placement that picks it would show). Recovery is quick:
a changeover of one second, and a launch takes 0.3 s.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.clock import VirtualClock
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

TICK_S = 2  # seconds per trace row (real time: the replay runs at speedup 1)
OFFERING = "sim/r1/sim-a/p3.2xlarge"
ZONE_A = "sim/r1/sim-a"


def write_trace(root: Path, name: str, available_a: Sequence[int]) -> Path:
    """A V100 spot trace: `available_a[i]` is zone a's capacity during row i."""
    zones = {"sim-a": (available_a, 1.0), "sim-b": ([0] * len(available_a), 0.5)}
    return write_zone_trace(root, name, zones, TICK_S)


def write_zone_trace(
    root: Path,
    name: str,
    zones: Mapping[str, tuple[Sequence[int], float]],
    tick_s: float,
    on_demand_price: float = 3.0,
) -> Path:
    """A V100 spot trace of zones in region r1: zone → (capacity per row, spot price)."""
    root.mkdir()
    start = dt.datetime(2026, 1, 1)
    rows = len(next(iter(zones.values()))[0])
    stamps = [
        (start + dt.timedelta(seconds=tick_s * i)).strftime("%Y-%m-%d %H:%M:%S")
        for i in range(rows)
    ]
    for zone, (values, _price) in zones.items():
        lines = ["date,availability", *(f"{s},{v}" for s, v in zip(stamps, values, strict=True))]
        (root / f"{zone}.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "name": name,
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": on_demand_price,
        "zones": {
            zone: {"region": "r1", "availability_file": f"{zone}.csv", "spot_price": price}
            for zone, (_values, price) in zones.items()
        },
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@contextmanager
def held_replay(
    root: Path,
    zones: Mapping[str, tuple[Sequence[int], float]],
    tick_s: float,
    now_row: int,
    start: float,
    history_hours: float,
    boot_seconds: float = 1.0,
    changeover_hours: float | None = None,
) -> Iterator[tuple[DaemonThread, DaemonClient, VirtualClock]]:
    """A daemon whose sim cloud replays `zones` from `now_row`, on a clock held still at
    `start` (the test moves it on); the trace's rows before `now_row` are its past.
    `boot_seconds` on that clock: 0 for instances that boot while it stands still.
    `changeover_hours`: `[recovery] changeover_hours` (None: the default)."""
    root.mkdir()
    settings = settings_for_tests(root)
    settings.sim.enabled = True
    settings.sim.traces = write_zone_trace(root / "trace", "history", zones, tick_s)
    settings.sim.speedup = 1.0
    settings.sim.start_offset_seconds = float(now_row * tick_s)
    settings.recovery.history_hours = history_hours
    settings.sim.provisioning_delay_seconds = boot_seconds
    if changeover_hours is not None:
        settings.recovery.changeover_hours = changeover_hours
    clock = VirtualClock(start)
    daemon = DaemonThread(settings, clock=clock).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            yield daemon, client, clock
    finally:
        assert daemon.stop() == 0


def first_event(
    client: DaemonClient, job_id: int, kind: str, state: str | None, timeout: float = 60
) -> dict[str, Any]:
    """The job's first event of `kind` (and `state`), once there is one."""

    def found() -> dict[str, Any] | None:
        for event in client.get_job(job_id)["events"]:
            if event["kind"] == kind and (state is None or event["state"] == state):
                return dict(event)
        return None

    return wait_until(found, timeout=timeout, error=lambda: client.get_job(job_id))


@contextmanager
def replaying(root: Path, name: str, available_a: Sequence[int]) -> Iterator[SimDaemon]:
    """A daemon on the trace under `root`; it must stop cleanly (exit 0) when the block ends."""
    settings = settings_for_tests(root)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(root / "trace", name, available_a)
    settings.sim.speedup = 1.0
    settings.sim.provisioning_delay_seconds = 0.3
    settings.recovery.changeover_hours = 1.0 / 3600
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            yield SimDaemon(daemon, client, root)
    finally:
        assert daemon.stop() == 0


class SimDaemon:
    """The running daemon, a client of it, and the directory jobs are submitted from."""

    def __init__(self, daemon: DaemonThread, client: DaemonClient, workdir: Path) -> None:
        self.daemon = daemon
        self.client = client
        self.workdir = workdir

    @property
    def state_dir(self) -> Path:
        return self.daemon.settings.state_dir

    def run_to_end(self, task: str, wait_s: float = 110) -> dict[str, Any]:
        """Submit `task` and wait until it has SUCCEEDED or FAILED: the job with its events."""
        job_id = int(self.client.submit_task(task, str(self.workdir), None)["id"])

        def ended() -> dict[str, Any] | None:
            job = self.client.get_job(job_id)
            return job if job["state"] in ("SUCCEEDED", "FAILED") else None

        return wait_until(ended, timeout=wait_s)

    def log(self, job_id: int, node: int = 0) -> str:
        return b"".join(self.client.job_logs(job_id, follow=False, node=node)).decode()
