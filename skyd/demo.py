"""`skyd demo`: a private daemon runs the example jobs to completion, then stops cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TERMINAL = {"SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"}


def _say(text: str) -> None:
    print(text, flush=True)


def _skyctl(
    socket: Path, *args: str, check: bool = True, quiet: bool = False, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "skyctl", "--socket", str(socket), *args]
    _say(f"$ skyctl {' '.join(args)}")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
    if result.stdout and not quiet:
        print(result.stdout, end="", flush=True)
    if result.stderr:
        print(result.stderr, end="", file=sys.stderr, flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f"skyd demo: `skyctl {' '.join(args)}` failed ({result.returncode})")
    return result


def _default_examples() -> Path:
    return Path(__file__).resolve().parents[1] / "examples"


def _wait_for_daemon(socket: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket as sockets

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("skyd demo: the daemon exited during start-up")
        with sockets.socket(sockets.AF_UNIX) as probe:
            try:
                probe.connect(str(socket))
                return
            except OSError:
                time.sleep(0.1)
    raise SystemExit("skyd demo: the daemon did not start within a minute")


# The demo's sim cloud: the shipped 3-zone V100 trace, 600x faster than real time, from a
# point where the cheapest zone loses spot capacity twice within a ~12 s job.
DEMO_CONFIG = """\
scheduler_tick_seconds = 0.2
[local]
gpus = 0
[sim]
enabled = true
speedup = 600.0
start_offset_seconds = 118950.0
provisioning_delay_seconds = 0.3
[recovery]
changeover_hours = 0.0003
"""


def run_demo(examples: Path | None = None, keep: bool = False) -> int:
    examples = examples or _default_examples()
    tasks = sorted(examples.glob("*.yaml")) + sorted(examples.glob("sim/*.yaml"))
    if not tasks:
        print(f"skyd demo: no example tasks (*.yaml) in {examples}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="skyd-demo-"))
    socket = root / "skyd.sock"
    daemon_log = root / "daemon.log"
    _say(f"== starting a private skyd (state {root / 'state'}, socket {socket})")
    config = root / "skyd.toml"
    config.write_text(DEMO_CONFIG)
    with open(daemon_log, "wb") as log:
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "skyd",
                "run",
                "--state-dir",
                str(root / "state"),
                "--socket",
                str(socket),
                "--config",
                str(config),
                "--log-format",
                "text",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    failed: list[str] = []
    try:
        _wait_for_daemon(socket, daemon)
        _say("== submitting the example jobs")
        # relative paths in a task (workdir, file_mounts) are read from the directory skyctl
        # runs in, as SkyPilot reads them: the examples' own
        submitted = _skyctl(socket, "submit", *map(str, tasks), "--json", quiet=True, cwd=examples)
        data = json.loads(submitted.stdout)
        jobs = data if isinstance(data, list) else [data]
        ids = [int(job["id"]) for job in jobs]
        _say("submitted jobs " + ", ".join(map(str, ids)))
        _say("== waiting for them to finish")
        deadline = time.monotonic() + 300
        states: dict[int, str] = {}
        while time.monotonic() < deadline:
            listing = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "skyctl",
                    "--socket",
                    str(socket),
                    "queue",
                    "--all",
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            states = {int(j["id"]): j["state"] for j in json.loads(listing.stdout)}
            if all(states.get(i) in TERMINAL for i in ids):
                break
            time.sleep(0.3)
        _skyctl(socket, "queue", "--all")
        for job_id in ids:
            _skyctl(socket, "logs", str(job_id))
        spot_jobs = [i for i, t in zip(ids, tasks, strict=False) if t.parent.name == "sim"]
        for job_id in spot_jobs:
            _say("== the spot job's story: placed, preempted, recovered, finished")
            _skyctl(socket, "show", str(job_id))
        failed = [f"job {i}: {states.get(i)}" for i in ids if states.get(i) != "SUCCEEDED"]
    finally:
        _say("== stopping the daemon (SIGTERM)")
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
        _say(f"daemon exited with code {code}")
        if keep:
            _say(f"state kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failed or code != 0:
        print(f"skyd demo: FAILED: {', '.join(failed) or 'daemon exit code'}", file=sys.stderr)
        return 1
    _say(f"== all {len(ids)} example jobs SUCCEEDED; the daemon stopped cleanly")
    return 0
