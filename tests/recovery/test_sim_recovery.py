"""End to end: the `sim` provider preempts a checkpointing spot job twice; skyd recovers it
from its checkpoint and it finishes before its deadline, with its spot time on record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

TICK = 2  # seconds per trace row (real time: the replay runs at speedup 1)
# row → spot capacity in zone a; zone b never has any
AVAILABLE_A = [1] * 4 + [0] * 2 + [1] * 4 + [0] * 2 + [1] * 40

TASK = """\
name: resumable
resources:
  accelerators: V100:1
  use_spot: true
estimated_runtime: 20s
deadline: 120s
envs:
  STEPS: 80
run: |
  step=0
  if [ -f "$SKYD_CHECKPOINT_DIR/step" ]; then
    step=$(cat "$SKYD_CHECKPOINT_DIR/step"); echo "resuming after step $step"
  fi
  while [ "$step" -lt "$STEPS" ]; do
    step=$((step + 1)); sleep 0.25
    ckpt="$SKYD_CHECKPOINT_DIR/step"
    echo "$step" > "$ckpt.tmp" && mv "$ckpt.tmp" "$ckpt"
  done
  echo "finished at step $step"
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
        "name": "two-preemptions",
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


def test_spot_job_survives_two_preemptions_and_meets_its_deadline(tmp_path: Path) -> None:
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
            log = b"".join(client.job_logs(job_id, follow=False)).decode()
            history = client.request(
                "GET", "/v1/prices/history", query={"offering": "sim/r1/sim-a/p3.2xlarge"}
            )["history"]
    finally:
        assert daemon.stop() == 0
    assert job["state"] == "SUCCEEDED", (job, log)
    assert job["ended_at"] <= job["deadline"]
    assert job["preemptions"] == 2
    assert job["restarts"] == 0  # preemptions are not errors
    assert log.count("resuming after step") == 2 and "finished at step 80" in log
    events = job["events"]
    preempted = [e for e in events if e["kind"] == "preempted"]
    assert [e["data"]["zone"] for e in preempted] == ["sim/r1/sim-a", "sim/r1/sim-a"]
    final = events[-1]
    assert final["state"] == "SUCCEEDED"
    spot, on_demand = final["data"]["spot_seconds"], final["data"]["on_demand_seconds"]
    # 20 s of work cannot fit in the two spot windows (~15.5 s): both withdrawals hit it.
    # It ran ~20 s in all; with slack to spare it waited for spot rather than pay.
    assert 18.0 <= spot + on_demand <= 60.0
    assert spot >= 10.0
    # what skyd saw itself is in the market history: the trace's withdrawals and its own
    # observed preemptions (the strongest spot-risk signal)
    sources = [h["source"] for h in history]
    assert sources.count("skyd-preemption") == 2 and "sim-trace" in sources
    placements = [e["data"]["placement"] for e in events if e["state"] == "PROVISIONING"]
    assert all(p["zone"] == "sim-a" for p in placements if p["spot"])
