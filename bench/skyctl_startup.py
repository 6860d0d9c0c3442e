"""How fast skyctl starts: `submit` end to end (new process → id printed) vs `python -c pass`.

Run from the repository root:

    python -m bench.skyctl_startup [--runs N] [--json]  # against a scripted stdlib responder
    python -m bench.skyctl_startup --socket PATH   # against a running daemon (submits real jobs)

Runs are interleaved (baseline, submit, queue, --help, baseline, …) so that load from other
processes on the machine hits every command alike; medians are reported. Target (issue 2):
submit ≤ 5× the bare interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from skyctl.testing import CannedResponse, ScriptedResponder

TARGET_RATIO = 5.0
DEFAULT_TASK = "name: bench-startup\nrun: echo hello\n"


def skyctl_command() -> list[str]:
    """The console script users run, when installed next to this interpreter; else `-m skyctl`."""
    script = os.path.join(os.path.dirname(sys.executable), "skyctl")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "skyctl"]


def timed_run(argv: Sequence[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed with {result.returncode}: {result.stderr.decode().strip()}"
        )
    return elapsed


def scripted_daemon(socket_path: str) -> ScriptedResponder:
    responder = ScriptedResponder(socket_path)
    responder.on("POST", "/v1/jobs", CannedResponse.json({"id": 1, "state": "PENDING"}, 201))
    jobs = [
        {
            "id": n,
            "name": f"job-{n}",
            "state": "RUNNING",
            "owner": "alice",
            "created_at": time.time() - n * 60,
            "started_at": time.time() - n * 30,
            "placement": {"cloud": "local", "region": "", "zone": "", "spot": False},
        }
        for n in range(1, 51)
    ]
    responder.on("GET", "/v1/jobs", CannedResponse.json({"jobs": jobs, "next_cursor": None}))
    return responder


def measure(socket_path: str, task_path: str, runs: int) -> dict[str, list[float]]:
    skyctl = [*skyctl_command(), "--socket", socket_path]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "skyctl submit FILE": [*skyctl, "submit", task_path],
        "skyctl queue": [*skyctl, "queue"],
        "skyctl --help": [*skyctl, "--help"],
    }
    for argv in commands.values():  # warm the page cache and .pyc files once
        timed_run(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(timed_run(argv))
    return samples


def report(samples: dict[str, list[float]]) -> str:
    baseline = statistics.median(samples["python -c pass"])
    lines = [f"{'command':<26} {'median':>9} {'ratio':>7}"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(f"{name:<26} {median * 1000:7.1f}ms {median / baseline:6.2f}x")
    submit_ratio = statistics.median(samples["skyctl submit FILE"]) / baseline
    verdict = "meets" if submit_ratio <= TARGET_RATIO else "MISSES"
    lines.append(f"submit {verdict} the target of ≤ {TARGET_RATIO:g}x ({submit_ratio:.2f}x)")
    return "\n".join(lines)


def as_json(samples: dict[str, list[float]], where: str) -> dict[str, object]:
    """Medians and each command's ratio to the bare interpreter measured in the same run."""
    baseline = statistics.median(samples["python -c pass"])
    return {
        "bench": "bench.skyctl_startup",
        "against": where,
        "runs": len(samples["python -c pass"]),
        "median_ms": {name: statistics.median(v) * 1000 for name, v in samples.items()},
        "ratio_to_python": {name: statistics.median(v) / baseline for name, v in samples.items()},
        "target_submit_ratio": TARGET_RATIO,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.skyctl_startup", description=__doc__)
    parser.add_argument("--socket", metavar="PATH", help="a running daemon's socket")
    parser.add_argument("--task", metavar="FILE", help="task file to submit (a tiny echo job)")
    parser.add_argument("--runs", type=int, default=20, help="runs per command (20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: at least 1")
    workdir = tempfile.mkdtemp(prefix="skyctl-bench-", dir="/tmp")
    responder = None
    try:
        task_path = args.task or os.path.join(workdir, "task.yaml")
        if not args.task:
            with open(task_path, "w", encoding="utf-8") as task_file:
                task_file.write(DEFAULT_TASK)
        socket_path = args.socket
        if socket_path is None:
            responder = scripted_daemon(os.path.join(workdir, "skyd.sock"))
            socket_path = responder.socket_path
        where = f"the daemon at {socket_path}" if args.socket else "a scripted stdlib responder"
        if args.json:
            print(json.dumps(as_json(measure(socket_path, task_path, args.runs), where), indent=2))
            return 0
        print(f"skyctl startup, {args.runs} interleaved runs each, against {where}")
        print(report(measure(socket_path, task_path, args.runs)))
    finally:
        if responder is not None:
            responder.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
