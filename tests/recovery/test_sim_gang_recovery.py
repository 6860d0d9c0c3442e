"""End to end: a 2-node spot job on the `sim` cloud (both instances in one zone) loses the
zone's spot capacity; skyd releases the whole gang and relaunches every node, and both
ranks run again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

TICK = 2  # seconds per trace row (real time: the replay runs at speedup 1)
# row -> spot capacity in zone a: withdrawn once, for two rows; zone b never has any
AVAILABLE_A = [1] * 3 + [0] * 2 + [1] * 60

TASK = """\
name: gang
num_nodes: 2
resources:
  accelerators: V100:1
  use_spot: true
estimated_runtime: 10s
deadline: 120s
setup: echo "setup attempt=$SKYD_ATTEMPT rank=$SKYPILOT_NODE_RANK"
run: |
  echo "attempt=$SKYD_ATTEMPT rank=$SKYPILOT_NODE_RANK of $SKYPILOT_NUM_NODES"
  # the first attempt outlives the capacity (the trace takes it back at 6 s)
  if [ "$SKYD_ATTEMPT" = 1 ]; then sleep 120; fi
"""


def write_trace(root: Path) -> Path:
    root.mkdir()
    start = dt.datetime(2026, 1, 1)
    stamps = [
        (start + dt.timedelta(seconds=TICK * i)).strftime("%Y-%m-%d %H:%M:%S")
        for i in range(len(AVAILABLE_A))
    ]
    for zone, values in (("sim-a", AVAILABLE_A), ("sim-b", [0] * len(AVAILABLE_A))):
        lines = ["date,availability", *(f"{s},{v}" for s, v in zip(stamps, values, strict=True))]
        (root / f"{zone}.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "name": "one-withdrawal",
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": 3.0,
        "zones": {
            "sim-a": {"region": "r1", "availability_file": "sim-a.csv", "spot_price": 1.0},
            "sim-b": {"region": "r1", "availability_file": "sim-b.csv", "spot_price": 0.5},
        },
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_preempted_gang_is_recovered_whole(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(tmp_path / "trace")
    settings.sim.speedup = 1.0
    settings.sim.provisioning_delay_seconds = 0.3
    settings.recovery.changeover_hours = 1.0 / 3600
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            job_id = int(client.submit_task(TASK, str(tmp_path), None)["id"])
            job = wait_until(
                lambda: (j := client.get_job(job_id))["state"] in ("SUCCEEDED", "FAILED") and j,
                timeout=110,
            )
            head = b"".join(client.job_logs(job_id, follow=False)).decode()
            other = b"".join(client.job_logs(job_id, follow=False, node=1)).decode()
            left = sorted(p.name for p in (settings.state_dir / "sim-instances").iterdir())
    finally:
        assert daemon.stop() == 0
    assert job["state"] == "SUCCEEDED", (job, head, other)
    assert job["preemptions"] == 1 and job["restarts"] == 0
    # every node ran both attempts: the gang was released and relaunched whole
    for rank, log in ((0, head), (1, other)):
        assert f"attempt=1 rank={rank} of 2" in log and f"attempt=2 rank={rank} of 2" in log
        assert f"setup attempt=2 rank={rank}" in log
    assert "rank=1" not in head and "rank=0" not in other
    launched = [e for e in job["events"] if e["data"] and e["data"].get("instances")]
    assert [len(e["data"]["instances"]) for e in launched] == [2, 2], launched
    first, second = (set(e["data"]["instances"]) for e in launched)
    assert not first & second
    preempted = [e for e in job["events"] if e["kind"] == "preempted"]
    assert len(preempted) == 1 and preempted[0]["data"]["zone"] == "sim/r1/sim-a"
    assert left == [], left  # every node of both attempts was terminated
