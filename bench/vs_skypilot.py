"""skyctl/skyd side by side with SkyPilot, whole commands in the same run.

    python -m bench.vs_skypilot --skypilot-venv /tmp/skypilot-venv [--runs 5] [--json]

SkyPilot is not a dependency: it is run from its own virtualenv (`pip install
skypilot==0.14.1` there), with a private HOME and API-server port, so nothing of a user's
~/.sky is read or touched, and its API server is stopped at the end.

Each pair is run A B A B … after one warm-up each, so load from other tenants of the machine
hits both alike; per pair the median wall time, the median of the pairwise ratios, and the
child's CPU time (user + sys, from wait4: less sensitive to a busy machine than wall time):

- `--help`: CLI start (`skyctl --help` vs `sky --help`);
- status: `skyctl clusters` (skyd) vs `sky status` (clusters, managed jobs and services
  from the local API server), both with nothing running;
- job queue: `skyctl queue` vs `sky jobs queue`;
- optimize: `skyctl optimize task.yaml` vs `sky launch --dryrun task.yaml`. SkyPilot's
  optimizer downloads its catalogs (common/accelerators.csv first) from the internet, which
  is unreachable here, so its dry run fails; its time to fail and the error are reported and
  no ratio is made of them.

Baselines: each side's `python -c pass`, and daemon start to healthy (`skyd run` until
/v1/health answers; `sky api start` until it returns healthy). Memory: the daemon's and the
API server's whole process trees after the commands, RSS and PSS (PSS counts pages shared
between processes once, so a tree of forked workers is not counted twice).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api_throughput import start_daemon
from bench.skyctl_startup import skyctl_command
from skyd.testing.daemon import kill_leftover_jobs

TASK = "name: bench-optimize\nresources:\n  accelerators: A100:1\nrun: echo hi\n"
DAEMON_CONFIG = "[local]\nslots = 2\ngpus = 0\n"


@dataclass
class Run:
    wall: float
    cpu: float
    code: int
    last_line: str


def run_once(argv: list[str], env: dict[str, str] | None, cwd: str) -> Run:
    """One whole process: wall clock around it, its CPU time (user + sys) from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    with proc.stdout:
        output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
    return Run(wall, usage.ru_utime + usage.ru_stime, proc.returncode, (lines or [""])[-1])


def pair(
    a: list[str], b: list[str], runs: int, env_a: dict[str, str], env_b: dict[str, str], cwd: str
) -> dict[str, Any]:
    """A and B in turn after a warm-up each; medians and the median pairwise ratio A/B."""
    run_once(a, env_a, cwd)
    run_once(b, env_b, cwd)
    rows: list[tuple[Run, Run]] = []
    for _ in range(runs):
        rows.append((run_once(a, env_a, cwd), run_once(b, env_b, cwd)))
    skyd_side = [r for r, _ in rows]
    sky_side = [r for _, r in rows]
    out: dict[str, Any] = {
        "skyctl_wall_s": statistics.median(r.wall for r in skyd_side),
        "skypilot_wall_s": statistics.median(r.wall for r in sky_side),
        "skyctl_cpu_s": statistics.median(r.cpu for r in skyd_side),
        "skypilot_cpu_s": statistics.median(r.cpu for r in sky_side),
        "skyctl_exit_codes": sorted({r.code for r in skyd_side}),
        "skypilot_exit_codes": sorted({r.code for r in sky_side}),
        "load_average": os.getloadavg(),
    }
    if any(r.code for r in skyd_side):
        raise SystemExit(f"{' '.join(a)} failed: {skyd_side[0].last_line}")
    if any(r.code for r in sky_side):
        out["skypilot_error"] = sky_side[0].last_line[:240]
    else:
        out["wall_ratio_skyctl_to_skypilot"] = statistics.median(x.wall / y.wall for x, y in rows)
        out["cpu_ratio_skyctl_to_skypilot"] = statistics.median(
            x.cpu / max(y.cpu, 1e-6) for x, y in rows
        )
    return out


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_memory(pid: int) -> dict[str, float]:
    """RSS and PSS (MiB) of a process and all its descendants."""
    rss = pss = 0
    pids = _descendants(pid)
    for member in pids:
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            key, _, rest = line.partition(":")
            if key == "Rss":
                rss += int(rest.split()[0])
            elif key == "Pss":
                pss += int(rest.split()[0])
    return {"processes": len(pids), "rss_mib": rss / 1024, "pss_mib": pss / 1024}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_pid(port: int) -> int | None:
    """The SkyPilot API server this run started: the process serving `port`."""
    needle = f"--port={port}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"sky.server.server" in cmdline and needle in cmdline:
                return int(entry.name)
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    venv = Path(args.skypilot_venv)
    sky = str(venv / "bin" / "sky")
    results: dict[str, Any] = {
        "bench": "bench.vs_skypilot",
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="skyd-vs-sky-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        home = root / "sky-home"
        home.mkdir()
        (root / "task.yaml").write_text(TASK)
        port = _free_port()
        sky_env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(home),
            "SKYPILOT_API_SERVER_LOCAL_PORT": str(port),
            "SKYPILOT_DISABLE_USAGE_COLLECTION": "1",  # no usage reports to send here
            "LANG": "C.UTF-8",
        }
        skyd_env = dict(os.environ)
        version = run_once([sky, "--version"], sky_env, tmp)
        started = time.perf_counter()
        daemon: subprocess.Popen[bytes] | None = None
        try:
            api = run_once([sky, "api", "start", "--host", "127.0.0.1"], sky_env, tmp)
            sky_start = time.perf_counter() - started
            if api.code:
                log = home / ".sky" / "api_server" / "server.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
                raise SystemExit(f"sky api start failed: {api.last_line}\n{tail}")
            daemon, skyd_start = start_daemon(root, DAEMON_CONFIG)
            skyctl = [*skyctl_command(), "--socket", str(root / "skyd.sock")]
            pairs = {
                "python_c_pass": (
                    [sys.executable, "-c", "pass"],
                    [str(venv / "bin/python"), "-c", "pass"],
                ),
                "help": ([*skyctl, "--help"], [sky, "--help"]),
                "status": ([*skyctl, "clusters"], [sky, "status"]),
                "job_queue": ([*skyctl, "queue"], [sky, "jobs", "queue"]),
                "optimize": (
                    [*skyctl, "optimize", "task.yaml"],
                    [sky, "launch", "--dryrun", "-y", "task.yaml"],
                ),
            }
            timed = {
                name: pair(a, b, args.runs, skyd_env, sky_env, tmp)
                for name, (a, b) in pairs.items()
            }
            server = _server_pid(port)
            daemon_memory = tree_memory(daemon.pid)
            server_memory = tree_memory(server) if server else None
            memory = {"skyd_daemon": daemon_memory, "skypilot_api_server": server_memory}
        finally:
            if daemon is not None:
                daemon.terminate()
                daemon.wait(60)
                kill_leftover_jobs(root / "state")
            stop = run_once([sky, "api", "stop"], sky_env, tmp)
            left = _server_pid(port)
            if left is not None:  # only the server this run started, by its own port
                for member in reversed(_descendants(left)):
                    os.kill(member, 15)
    base = timed["python_c_pass"]
    results |= {
        "skypilot_version": version.last_line,
        # the named figures: skyctl's wall time as a share of SkyPilot's, same run
        "help_wall_ratio": timed["help"].get("wall_ratio_skyctl_to_skypilot"),
        "status_wall_ratio": timed["status"].get("wall_ratio_skyctl_to_skypilot"),
        "job_queue_wall_ratio": timed["job_queue"].get("wall_ratio_skyctl_to_skypilot"),
        "optimize_skyctl_wall_s": timed["optimize"]["skyctl_wall_s"],
        "optimize_skypilot_error": timed["optimize"].get("skypilot_error"),
        "python_c_pass_ratio": base.get("wall_ratio_skyctl_to_skypilot"),
        "daemon_start_s": skyd_start,
        "api_server_start_s": sky_start,
        "daemon_pss_mib": daemon_memory["pss_mib"],
        "api_server_pss_mib": (server_memory or {}).get("pss_mib"),
        "commands": timed,
        "memory": memory,
        "skypilot_api_stop": stop.last_line,
        "load_average_at_end": os.getloadavg(),
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skypilot-venv", required=True, help="a virtualenv with skypilot")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if not (Path(args.skypilot_venv) / "bin" / "sky").exists():
        parser.error(
            f"--skypilot-venv {args.skypilot_venv}: no bin/sky there; create it with "
            "python -m venv PATH && PATH/bin/pip install skypilot==0.14.1"
        )
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for key, value in results.items():
        if key not in ("commands", "memory"):
            print(f"{key:<28} {value:.3f}" if isinstance(value, float) else f"{key:<28} {value}")
    print("(--json for every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
