"""End to end: the `sim` provider preempts a checkpointing spot job twice; skyd recovers it
from its checkpoint and it finishes before its deadline, with its spot time on record."""

from __future__ import annotations

from pathlib import Path

from skyd.testing.sim_replay import OFFERING, ZONE_A, replaying

# row → spot capacity in zone a (2 s a row); zone b never has any
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


def test_spot_job_survives_two_preemptions_and_meets_its_deadline(tmp_path: Path) -> None:
    with replaying(tmp_path, "two-preemptions", AVAILABLE_A) as sim:
        job = sim.run_to_end(TASK)
        log = sim.log(job["id"])
        prices = sim.client.request("GET", "/v1/prices/history", query={"offering": OFFERING})
    history = prices["history"]
    assert job["state"] == "SUCCEEDED", (job, log)
    assert job["ended_at"] <= job["deadline"]
    assert job["preemptions"] == 2
    assert job["restarts"] == 0  # preemptions are not errors
    assert log.count("resuming after step") == 2 and "finished at step 80" in log
    events = job["events"]
    preempted = [e for e in events if e["kind"] == "preempted"]
    assert [e["data"]["zone"] for e in preempted] == [ZONE_A, ZONE_A]
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
