"""Daemon API throughput: submits/s and latency from 50 concurrent clients, and `queue` paging
over 100,000 stored jobs. Baseline in the same run: GET /v1/health on the same HTTP stack.

    python -m bench.api_throughput [--clients 50] [--requests 5000] [--stored 100000]
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
from pathlib import Path

import aiohttp

from skyd.testing.daemon import kill_leftover_jobs

TASK = "name: bench\nresources:\n  cloud: local\nrun: echo hi\n"
BLOCKER = "name: blocker\nrun: sleep 3600\n"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _load(socket: str, clients: int, total: int, method: str, path: str, body: object):
    connector = aiohttp.UnixConnector(path=socket, limit=clients)
    latencies: list[float] = []
    errors = 0
    remaining = total

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.request(method, f"http://skyd{path}", json=body) as resp:
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
    }


def _start_daemon(root: Path) -> subprocess.Popen[bytes]:
    config = root / "skyd.toml"
    config.write_text("[local]\nslots = 1\ngpus = 0\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skyd",
            "run",
            "--state-dir",
            str(root / "state"),
            "--socket",
            str(root / "skyd.sock"),
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "daemon.log", "wb"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 60
    while not (root / "skyd.sock").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("daemon did not start")
        time.sleep(0.05)
    return proc


def _seed_jobs(state_dir: Path, count: int) -> None:
    """Bulk-insert finished jobs (one transaction) so `queue --all` pages over `count` rows."""
    from skyd.store import open_store

    store = open_store(state_dir)
    now = time.time()
    rows = [
        (f"seed-{i}", 1000 + i % 100, f"user{i % 100}", None, 0, "SUCCEEDED", "{}", "/", now, now)
        for i in range(count)
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO jobs (name, owner_uid, owner_name, project, priority, state, spec_json,"
            " base_dir, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    store.close()


async def _queue_pages(socket: str, samples: int) -> dict[str, float]:
    connector = aiohttp.UnixConnector(path=socket)
    first: list[float] = []
    deep: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        cursor = None
        for i in range(samples):
            started = time.perf_counter()
            async with session.get("http://skyd/v1/jobs?all=1&limit=100") as resp:
                page = await resp.json()
            first.append(time.perf_counter() - started)
            cursor = page["next_cursor"] if i == 0 else cursor
        # a page deep in the history (keyset pagination: same cost at any depth)
        for _ in range(samples):
            started = time.perf_counter()
            async with session.get("http://skyd/v1/jobs?all=1&limit=100&cursor=50000") as resp:
                await resp.json()
            deep.append(time.perf_counter() - started)
    return {
        "first_page_median_ms": 1000 * statistics.median(first),
        "first_page_p99_ms": 1000 * _percentile(first, 0.99),
        "deep_page_median_ms": 1000 * statistics.median(deep),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--stored", type=int, default=100_000)
    args = parser.parse_args(argv)
    results: dict[str, object] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="skyd-bench-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        daemon = _start_daemon(root)
        socket = str(root / "skyd.sock")
        try:
            body = {"task_yaml": BLOCKER, "base_dir": tmp}
            asyncio.run(_load(socket, 1, 1, "POST", "/v1/jobs", body))  # holds the only slot
            time.sleep(1.0)  # let it start, so every benchmark submit stays queued
            health = asyncio.run(
                _load(socket, args.clients, args.requests, "GET", "/v1/health", None)
            )
            submit_body = {"task_yaml": TASK, "base_dir": tmp}
            # the first submits pay for lazy set-up (caches, the first planner pass):
            # reported apart, then the sustained rate on a warm daemon
            cold = asyncio.run(_load(socket, args.clients, 500, "POST", "/v1/jobs", submit_body))
            time.sleep(2.0)
            submit = asyncio.run(
                _load(socket, args.clients, args.requests, "POST", "/v1/jobs", submit_body)
            )
        finally:
            daemon.terminate()
            daemon.wait(60)
        results["health_baseline"] = health
        results["submit_cold_first_500"] = cold
        results["submit"] = submit
        results["submit_vs_health_throughput"] = submit["per_second"] / health["per_second"]

        _seed_jobs(root / "state", args.stored)
        daemon = _start_daemon(root)
        try:
            results["queue_over_stored"] = {
                "stored": args.stored,
                **asyncio.run(_queue_pages(socket, 50)),
            }
        finally:
            daemon.terminate()
            daemon.wait(60)
        # stop the blocker job left running (jobs outlive their daemon by design)
        kill_leftover_jobs(root / "state")
        time.sleep(0.5)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
