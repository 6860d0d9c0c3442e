"""The flows of scripts/e2e-slurm: a private `skyd run` with the slurm provider, four jobs.

Run by scripts/e2e-slurm after it started the cluster. Prints progress to stderr and, last,
one JSON line in the issue's shape, {"jobs", "succeeded", "multi_node_ranks_seen",
"recovered", "left_in_squeue"}, where `jobs` counts the jobs meant to finish (the 2-node,
GPU and preempted ones) and `succeeded` those that did; then what else was checked:
"cancelled" (the job cancelled on purpose, not among `jobs`), "gpu_visible" and "ok".
Exits 0 only when every check holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from skyctl.client import DaemonClient

T = TypeVar("T")
ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
WAIT_S = 300.0


def say(text: str) -> None:
    print(f"e2e-slurm: {text}", file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def squeue(*args: str) -> str:
    return subprocess.run(
        ["squeue", "-h", *args], capture_output=True, text=True, check=True
    ).stdout


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="skyd-e2e-slurm-"))
    config = root / "skyd.toml"
    config.write_text(
        "[local]\nenabled = false\n\n[[slurm.clusters]]\n"
        f'name = "e2e"\nwork_dir = "{root / "cluster"}"\npython = "{sys.executable}"\n'
    )
    socket = root / "skyd.sock"
    daemon_log = open(root / "daemon.log", "wb")  # noqa: SIM115  (open for the daemon's life)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "skyd", "run", "--config", str(config), "--state-dir",
         str(root / "state"), "--socket", str(socket), "--log-format", "text"],
        stdout=daemon_log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    say(f"daemon pid {daemon.pid}, state in {root}")
    result: dict[str, Any] = {}
    try:
        wait_for("the daemon's socket", socket.exists, timeout=60)
        with DaemonClient(str(socket)) as client:
            result = run_jobs(client, root)
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
        daemon_log.close()
        say(f"daemon exited {code}")
    print(json.dumps(result))
    return 0 if result.get("ok") else 1


def submit(client: DaemonClient, task: str, base: Path) -> int:
    return int(client.submit_task(task, str(base), None)["id"])


def state(client: DaemonClient, job_id: int) -> str:
    return str(client.get_job(job_id)["state"])


def run_jobs(client: DaemonClient, root: Path) -> dict[str, Any]:
    marker = root / "first-attempt"
    gang = submit(
        client,
        "name: e2e-gang\nnum_nodes: 2\nresources: {infra: slurm/e2e/lab}\n"
        'run: echo "rank=$SKYPILOT_NODE_RANK size=$SKYPILOT_NUM_NODES '
        'ips=$(echo $SKYPILOT_NODE_IPS)"\n',
        root,
    )
    gpu = submit(
        client,
        "name: e2e-gpu\nresources: {infra: slurm, accelerators: FAKE:1}\n"
        "run: echo gpus=$CUDA_VISIBLE_DEVICES\n",
        root,
    )
    say(f"submitted the 2-node job {gang} and the GPU job {gpu}")
    for job_id in (gang, gpu):
        wait_for(f"job {job_id}", lambda j=job_id: state(client, j) in ENDED)
    preemptible = submit(
        client,
        "name: e2e-preemptible\nnum_nodes: 2\nresources: {infra: slurm/e2e/lab}\n"
        "job_recovery: {strategy: FAILOVER}\n"
        f"run: |\n  m={marker}-$SKYPILOT_NODE_RANK\n"
        '  if [ ! -e "$m" ]; then touch "$m"; sleep 600; fi\n  echo recovered-and-done\n',
        root,
    )
    wait_for("the preemptible job to run", lambda: Path(f"{marker}-0").exists())
    urgent = subprocess.run(
        ["sbatch", "--parsable", "-p", "urgent", "-N", "2", "--cpus-per-task=2",
         "--output=/dev/null", "--chdir=/tmp", "--wrap", "true"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    say(f"job {preemptible} runs; Slurm job {urgent} of partition urgent preempts it")
    wait_for(f"job {preemptible}", lambda: state(client, preemptible) in ENDED)
    long = submit(client, "name: e2e-cancel\nresources: {infra: slurm}\nrun: sleep 600\n", root)
    wait_for(f"job {long} to run", lambda: state(client, long) == "RUNNING")
    client.cancel_job(long)
    wait_for(f"job {long} to end", lambda: state(client, long) in ENDED)
    say(f"cancelled job {long}")
    jobs = {j: client.get_job(j) for j in (gang, gpu, preemptible, long)}
    logs = {
        # every rank's lines: `skyctl logs` shows rank 0 alone by default
        j: b"".join(client.job_logs(j, follow=False, all_nodes=True)).decode(errors="replace")
        for j in jobs
    }
    ranks = sorted(
        {int(m) for m in re.findall(r"rank=(\d+) size=2 ips=127\.0\.0\.1 127\.0\.0\.1", logs[gang])}
    )

    daemon_id = (root / "state" / "daemon-id").read_text().strip()

    def ours_in_squeue() -> int:
        """This daemon's Slurm jobs still pending or running (squeue lists only those)."""
        comments = squeue("-O", "Comment:|").splitlines()
        return sum(1 for line in comments if f"skyd-daemon={daemon_id}," in line + ",")

    with contextlib.suppress(TimeoutError):  # scancel takes a moment to settle
        wait_for("skyd's Slurm jobs to leave squeue", lambda: ours_in_squeue() == 0, timeout=60)
    left = ours_in_squeue()
    finishing = (gang, gpu, preemptible)  # the cancelled job is counted on its own
    succeeded = sum(1 for j in finishing if jobs[j]["state"] == "SUCCEEDED")
    result: dict[str, Any] = {
        "jobs": len(finishing),
        "succeeded": succeeded,
        "multi_node_ranks_seen": ranks,
        "recovered": int(jobs[preemptible]["preemptions"])
        if jobs[preemptible]["state"] == "SUCCEEDED" and "recovered-and-done" in logs[preemptible]
        else 0,
        "left_in_squeue": left,
        "cancelled": int(jobs[long]["state"] == "CANCELLED"),
        "gpu_visible": "gpus=0" in logs[gpu],
    }
    result["ok"] = (
        result["succeeded"] == result["jobs"]
        and result["cancelled"] == 1
        and ranks == [0, 1]
        and result["recovered"] >= 1
        and left == 0
        and result["gpu_visible"]
    )
    for job_id, job in jobs.items():
        say(f"job {job_id} {job['name']}: {job['state']}")
    return result


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
