"""The program a skyd Slurm batch job runs: waits for its launch, runs setup then run on every node.

Stdlib only and self-contained: it is copied next to the batch script and runs under the
cluster's python3. Usage (inside the allocation): python3 batch_shim.py DIR

DIR is the attempt's directory on the cluster's shared filesystem. skyd writes
DIR/launch.json once the allocation runs (a Slurm job plays the part of a booted VM); this
program then runs setup on all nodes (one `srun` task per node), then run on all nodes,
with SKYPILOT_NODE_RANK = the task's rank, SKYPILOT_NUM_NODES and SKYPILOT_NODE_IPS (and the
SKYD_* names). Each node's output goes to DIR/node-RANK.log; DIR/status.json records the
phases and exit codes (replaced atomically). After the run it keeps the allocation, as a
VM stays up, until skyd cancels it or `linger_s` passes: so skyd reads the exit status of a
job that is still there. A job Slurm requeued (SLURM_RESTART_COUNT > 0) exits at once:
skyd treats the requeue as a preemption and recovers the attempt itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TextIO

SIGNAL_WAIT_S = 300.0
# Each task exports its rank under both names, then runs the phase's command in bash.
_TASK = (
    'export SKYD_NODE_RANK="$SLURM_PROCID" SKYPILOT_NODE_RANK="$SLURM_PROCID"; '
    'cd "$SKYD_WORKDIR" && exec bash -c "$SKYD_PHASE_COMMAND"'
)


def _write_status(directory: str, status: dict[str, object]) -> None:
    tmp = os.path.join(directory, "status.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(status, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, os.path.join(directory, "status.json"))


def _node_addresses() -> list[str]:
    """Addresses of the allocation's nodes in rank order (NodeAddr; the name if unknown)."""
    names = subprocess.run(
        ["scontrol", "show", "hostnames", os.environ.get("SLURM_JOB_NODELIST", "")],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    addresses = []
    for name in names:
        shown = subprocess.run(
            ["scontrol", "show", "node", "-o", name], capture_output=True, text=True, check=False
        ).stdout
        addr = name
        for item in shown.split():
            if item.startswith("NodeAddr="):
                addr = item.split("=", 1)[1] or name
        addresses.append(addr)
    return addresses or ["127.0.0.1"]


def _log_line(directory: str, text: str) -> None:
    with open(os.path.join(directory, "node-0.log"), "a") as log:
        log.write(text + "\n")


def _phase(directory: str, label: str, command: str, env: dict[str, str], nodes: int) -> int:
    _log_line(directory, f"--- skyd: {label} started at {time.strftime('%Y-%m-%d %H:%M:%S')} ---")
    phase_env = dict(env)
    phase_env["SKYD_PHASE_COMMAND"] = command
    # srun's own complaints (a step it could not create, a lost node) belong in the job's log
    with open(os.path.join(directory, "node-0.log"), "a") as errors:
        return _srun(directory, phase_env, nodes, errors)


def _srun(directory: str, env: dict[str, str], nodes: int, errors: TextIO) -> int:
    proc = subprocess.run(
        [
            "srun",
            f"--nodes={nodes}",
            f"--ntasks={nodes}",
            "--ntasks-per-node=1",
            "--kill-on-bad-exit=1",
            "--open-mode=append",
            f"--output={directory}/node-%t.log",
            "--export=ALL",
            "bash",
            "-c",
            _TASK,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=errors,
        check=False,
    )
    return proc.returncode


def main(directory: str) -> int:
    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0:
        print("skyd: this job was requeued by Slurm; skyd recovers the attempt itself")
        return 0
    status: dict[str, object] = {
        "pid": os.getpid(),
        "phase": "setup",
        "setup_exit": None,
        "run_exit": None,
        "started_at": None,
        "run_started_at": None,
        "ended_at": None,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }

    def on_term(signum: int, _frame: object) -> None:
        if status["started_at"] is not None and status["phase"] in ("setup", "run"):
            status.update(phase="killed", ended_at=time.time())
            _write_status(directory, status)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    launch_path = os.path.join(directory, "launch.json")
    while not os.path.exists(launch_path):  # skyd hands the job over once it sees us run
        time.sleep(1.0)
    with open(launch_path) as fh:
        launch = json.load(fh)
    nodes = int(os.environ.get("SLURM_JOB_NUM_NODES", "1") or 1)
    workdir = os.path.join(directory, "workdir")
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in dict(launch.get("env") or {}).items()})
    ips = "\n".join(_node_addresses())
    for prefix in ("SKYD", "SKYPILOT"):
        env[f"{prefix}_NUM_NODES"] = str(nodes)
        env[f"{prefix}_NODE_IPS"] = ips
    env["SKYD_WORKDIR"] = workdir
    env.setdefault("SKYD_CHECKPOINT_DIR", os.path.join(directory, "checkpoints"))
    os.makedirs(env["SKYD_CHECKPOINT_DIR"], exist_ok=True)
    status["started_at"] = time.time()
    _write_status(directory, status)
    setup = launch.get("setup")
    if setup:
        code = _phase(directory, "setup", str(setup), env, nodes)
        if code != 0:
            _await_signal()
        status["setup_exit"] = code
        if code != 0:
            _log_line(directory, f"--- skyd: setup exited with code {code} ---")
            status.update(phase="done", ended_at=time.time())
            _write_status(directory, status)
            return _linger(float(launch.get("linger_s", 600)))
    else:
        status["setup_exit"] = 0
    status.update(phase="run", run_started_at=time.time())
    _write_status(directory, status)
    code = _phase(directory, "run", str(launch.get("run") or "true"), env, nodes)
    if code != 0:
        _await_signal()
    _log_line(directory, f"--- skyd: run exited with code {code} ---")
    status.update(phase="done", run_exit=code, ended_at=time.time())
    _write_status(directory, status)
    return _linger(float(launch.get("linger_s", 600)))


def _await_signal() -> None:
    """A failed step may be Slurm taking the allocation away (preemption, requeue, scancel):
    it kills the steps first and this batch step after. If Slurm no longer has this job
    RUNNING as first started, wait for that signal, so the attempt is recorded as killed
    rather than as the task's own failure."""
    shown = subprocess.run(
        ["squeue", "-h", "-j", os.environ.get("SLURM_JOB_ID", ""), "-O", "State:|,RestartCnt:|"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("|")
    if len(shown) >= 2 and shown[0].strip() == "RUNNING" and shown[1].strip() in ("", "0"):
        return
    time.sleep(SIGNAL_WAIT_S)


def _linger(seconds: float) -> int:
    """Hold the allocation until skyd cancels it (it has read the status by then)."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    time.sleep(max(0.0, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
