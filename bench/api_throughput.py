"""Daemon API under a lab-sized queue: submits from 50 clients, the pending-queue page at
100,000 pending jobs (all submitted through the API), `skyctl queue`, event-loop lag and
daemon start, each against a baseline from the same run.

    python -m bench.api_throughput [--clients 50] [--requests 5000] [--pending 100000] [--json]

The daemon is not idle while it is measured: `local` (2 slots, held by two long jobs) and the
`sim` cloud are enabled, a sim vCPU quota couples the waiting jobs so every planner pass solves
the global model (skyd.optimizer.solve_assignment, in the planner's own process), accrual
runs every second, and one submit in
`--placeable-every` (50) is a sim CPU job that is placed, launched, run and charged while the
burst goes on, at the same priority as the rest: the scheduler's backfill window reaches them
behind the thousands of local jobs that cannot start. What happened during the measured
submit window (placements, launches, planner passes, global solves, accrual passes) is
reported beside the figures (`activity`).

Baselines (`baselines` pairs each named figure with its own): GET /v1/health on the same
stack (throughput, p99), the finished-history page (`all=1`, what the README measured
before), `python -c pass` and `import skyd.daemon` (CLI and daemon start), the same
daemon's loop lag over 2 idle seconds before the burst (the machine's own noise). Loop lag is the
daemon's own monitor (skyd.looplag, a wake-up every 5 ms here): `loop_lag_ms_max` is the exact
worst sample during the submit and paging windows, read from
`skyd_loop_lag_window_max_seconds{window="2"}` by a poller every second (the 10 s maximum
where polls fell further apart: bench.daemon_probe). On a shared machine a late wake-up also
holds time the kernel gave other processes: the lateness the daemon's own work caused lies
between `loop_lag_loop_thread_ms_max` (the loop thread's CPU time while late) and
`loop_lag_own_work_ms_max` (the whole daemon's, every thread): skyd.looplag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.daemon_probe import watch
from bench.skyctl_startup import skyctl_command, timed_run
from skyd.testing.daemon import kill_leftover_jobs

TASK = "name: bench\nresources:\n  cloud: local\nrun: echo hi\n"
# placeable at once: a CPU instance type on the sim cloud, priced from the AWS catalog, and
# at the local jobs' priority: the scheduler's moving backfill window finds it behind them
PLACEABLE = "name: bench-sim\nresources:\n  cloud: sim\n  cpus: 2\nrun: 'true'\n"
BLOCKER = "name: blocker\nresources:\n  cloud: local\nrun: sleep 3600\n"
LOCAL_SLOTS = 2
CONFIG = f"""\
loop_lag_interval_seconds = 0.005
[local]
slots = {LOCAL_SLOTS}
gpus = 0
[sim]
enabled = true
provisioning_delay_seconds = 0.2
[accounting]
accrual_interval_seconds = 1.0
[[quotas]]
name = "sim vcpus"
cloud = "sim"
resource = "vcpus"
limit = 4096
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _load(
    socket: str,
    clients: int,
    total: int,
    method: str,
    path: str,
    body: object | Callable[[int], object],
) -> dict[str, float]:
    connector = aiohttp.UnixConnector(path=socket, limit=clients)
    latencies: list[float] = []
    errors = 0
    remaining = total
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                payload = body(remaining) if callable(body) else body
                started = time.perf_counter()
                async with session.request(method, f"http://skyd{path}", json=payload) as resp:
                    await resp.read()
                    if resp.status >= 300:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return {
        "requests": total,
        "errors": errors,
        "per_second": total / elapsed,
        "p50_ms": 1000 * _percentile(latencies, 0.50),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies),
    }


async def _get(socket: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket)) as session,
        session.get(f"http://skyd{path}") as resp,
    ):
        return await (resp.json() if path != "/metrics" else resp.text())


def start_daemon(root: Path, config_text: str = CONFIG) -> tuple[subprocess.Popen[bytes], float]:
    """Start `skyd run`; returns it and the seconds until /v1/health answered."""
    config = root / "skyd.toml"
    config.write_text(config_text)
    socket = root / "skyd.sock"
    started = time.perf_counter()
    proc = subprocess.Popen(
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "daemon.log", "ab"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 120
    while True:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"daemon did not start; see {root / 'daemon.log'}")
        if socket.exists():
            try:
                asyncio.run(_get(str(socket), "/v1/health"))
                return proc, time.perf_counter() - started
            except (aiohttp.ClientError, OSError):
                pass
        time.sleep(0.01)


async def _pages(socket: str, samples: int, first_id: int, last_id: int) -> dict[str, float]:
    """Medians of the pending page (newest), a pending page halfway down (keyset cursor) and
    the finished-history page (`all=1`, the baseline)."""
    middle = (first_id + last_id) // 2
    paths = {
        "pending_page": "/v1/jobs?limit=100",
        "pending_deep_page": f"/v1/jobs?limit=100&cursor={middle}",
        "history_page": "/v1/jobs?all=1&limit=100",
        "pending_1000_page": "/v1/jobs?limit=1000",  # what the dashboard asks per page
    }
    timings: dict[str, list[float]] = {name: [] for name in paths}
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket)) as session:
        for _ in range(samples):
            for name, path in paths.items():  # interleaved: load hits every page alike
                started = time.perf_counter()
                async with session.get(f"http://skyd{path}") as resp:
                    page = await resp.json()
                timings[name].append(time.perf_counter() - started)
                assert len(page["jobs"]) == (1000 if "1000" in path else 100), path
    out = {f"{name}_ms_median": 1000 * statistics.median(t) for name, t in timings.items()}
    out |= {f"{name}_ms_p99": 1000 * _percentile(t, 0.99) for name, t in timings.items()}
    return out


def _cli(socket: str, runs: int) -> dict[str, float]:
    skyctl = [*skyctl_command(), "--socket", socket]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "skyctl queue": [*skyctl, "queue"],
    }
    for argv in commands.values():
        timed_run(argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(timed_run(argv))
    base = statistics.median(samples["python -c pass"])
    queue = statistics.median(samples["skyctl queue"])
    return {"python_c_pass_ms": base * 1000, "skyctl_queue_ms": queue * 1000, "ratio": queue / base}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "bench": "bench.api_throughput",
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="skyd-bench-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        socket = str(root / "skyd.sock")
        python_start = statistics.median(
            timed_run([sys.executable, "-c", "pass"]) for _ in range(5)
        )
        # the floor of a daemon start: importing it (no store, no catalog, no socket)
        import_daemon = statistics.median(
            timed_run([sys.executable, "-c", "import skyd.daemon"]) for _ in range(3)
        )
        daemon, start_empty = start_daemon(root)
        try:
            blocker = {"task_yaml": BLOCKER, "base_dir": tmp}
            for _ in range(LOCAL_SLOTS):  # hold local's slots: local submits stay queued
                asyncio.run(_load(socket, 1, 1, "POST", "/v1/jobs", blocker))
            time.sleep(1.0)  # let them start
            # the baseline of loop lag: the same daemon, idle but for its services (the
            # machine's own scheduling noise shows here too)
            with watch(socket) as idle:
                time.sleep(2.0)
            health = asyncio.run(
                _load(socket, args.clients, args.requests, "GET", "/v1/health", None)
            )
            body = {"task_yaml": TASK, "base_dir": tmp}
            placeable = {"task_yaml": PLACEABLE, "base_dir": tmp}
            every = args.placeable_every

            def mixed(n: int) -> object:
                return placeable if every and n % every == 0 else body

            # the first submits pay for lazy set-up (caches, the first planner pass)
            cold = asyncio.run(_load(socket, args.clients, 500, "POST", "/v1/jobs", mixed))
            time.sleep(2.0)
            with watch(socket) as during_submit:
                submit = asyncio.run(
                    _load(socket, args.clients, args.requests, "POST", "/v1/jobs", mixed)
                )
            fill = max(0, args.pending - 500 - args.requests)
            filled = asyncio.run(_load(socket, args.clients, fill, "POST", "/v1/jobs", body))
            time.sleep(2.0)
            newest = asyncio.run(_get(socket, "/v1/jobs?limit=1"))["jobs"][0]["id"]
            with watch(socket) as during_pages:
                pages = asyncio.run(_pages(socket, args.page_samples, 2, newest))
            cli = _cli(socket, args.cli_runs)
        finally:
            daemon.terminate()
            daemon.wait(60)
        daemon, start_full = start_daemon(root)
        daemon.terminate()
        daemon.wait(60)
        kill_leftover_jobs(root / "state")  # the blocker (jobs outlive their daemon)
        time.sleep(0.5)
    submit_window = during_submit.as_dict()
    results |= {
        # the named figures (README's Measured table), then their baselines and details
        "pending_page_ms_median": pages["pending_page_ms_median"],
        "pending_deep_page_ms_median": pages["pending_deep_page_ms_median"],
        "history_page_ms_median": pages["history_page_ms_median"],
        "pending_1000_page_ms_median": pages["pending_1000_page_ms_median"],
        "submit_p99_ms": submit["p99_ms"],
        "submits_per_s": submit["per_second"],
        "health_per_s": health["per_second"],
        "loop_lag_ms_max": max(during_submit.lag_max_ms, during_pages.lag_max_ms),
        # of it, at most how late the daemon's own work made it (its CPU time while late): on
        # a busy machine the rest is time the kernel gave other processes
        "loop_lag_own_work_ms_max": max(during_submit.own_lag_max_ms, during_pages.own_lag_max_ms),
        # a lower bound of the same: the loop thread's own CPU time while late
        "loop_lag_loop_thread_ms_max": max(
            during_submit.own_lag_min_ms, during_pages.own_lag_min_ms
        ),
        "loop_lag_sample_interval_ms": 5.0,
        "skyctl_queue_ratio_to_python": cli["ratio"],
        "daemon_start_to_healthy_s": start_empty,
        "daemon_start_to_healthy_with_pending_s": start_full,
        "python_c_pass_s": python_start,
        "import_skyd_daemon_s": import_daemon,
        "health_p99_ms": health["p99_ms"],
        "loop_lag_idle_ms_max": idle.lag_max_ms,
        "loop_lag_idle_own_work_ms_max": idle.own_lag_max_ms,
        # each named figure beside its baseline from this run
        "baselines": {
            "pending_page_ms_median": {"history_page_ms_median": pages["history_page_ms_median"]},
            "submit_p99_ms": {"health_p99_ms": health["p99_ms"]},
            "submits_per_s": {"health_per_s": health["per_second"]},
            "loop_lag_ms_max": {"loop_lag_idle_ms_max": idle.lag_max_ms},
            "daemon_start_to_healthy_s": {
                "python_c_pass_s": python_start,
                "import_skyd_daemon_s": import_daemon,
            },
            "daemon_start_to_healthy_with_pending_s": {"daemon_start_to_healthy_s": start_empty},
        },
        "pending_jobs": 500 + args.requests + fill,
        # what the daemon did while the submits were measured: not an idle scheduler
        "activity_during_submit": {
            "placeable_share": 1 / every if every else 0.0,
            **submit_window,
        },
        "details": {
            "health_baseline": health,
            "submit_cold_first_500": cold,
            "submit": submit,
            "fill_to_pending": filled,
            "pages": pages,
            "cli": cli,
            "during_pages": during_pages.as_dict(),
            "load_average": os.getloadavg(),
        },
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--page-samples", type=int, default=30)
    parser.add_argument("--cli-runs", type=int, default=10)
    parser.add_argument(
        "--placeable-every",
        type=int,
        default=50,
        help="one submit in N is a sim job placed and run at once (0: none)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for key, value in results.items():
        if key != "details":
            print(f"{key:<45} {value:.2f}" if isinstance(value, float) else f"{key:<45} {value}")
    print("(--json for every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
