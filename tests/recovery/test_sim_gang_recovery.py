"""End to end: a 2-node spot job on the `sim` cloud (both instances in one zone) loses the
zone's spot capacity; skyd releases the whole gang and relaunches every node, and both
ranks run again."""

from __future__ import annotations

from pathlib import Path

from skyd.testing.sim_replay import ZONE_A, replaying

# row -> spot capacity in zone a (2 s a row): withdrawn once, for two rows; zone b never has any
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


def test_preempted_gang_is_recovered_whole(tmp_path: Path) -> None:
    with replaying(tmp_path, "one-withdrawal", AVAILABLE_A) as sim:
        job = sim.run_to_end(TASK)
        head, other = sim.log(job["id"]), sim.log(job["id"], node=1)
        left = sorted(p.name for p in (sim.state_dir / "sim-instances").iterdir())
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
    assert len(preempted) == 1 and preempted[0]["data"]["zone"] == ZONE_A
    assert left == [], left  # every node of both attempts was terminated
