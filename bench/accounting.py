"""Benchmark: one accrual tick over many running instances, and cost reports over a year of
ledger (python -m bench.accounting). Targets (issue 8): a tick over 10,000 instances ≤ 100 ms;
`costs` over a year of ledger for 100 users ≤ 500 ms.

The year of ledger is written by the real accrual code on a virtual clock: each user runs one
job at a time on two instances, a new job every week, with credit pools on three clouds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from skyd.accounting import Accountant, AccountingSettings
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.store import Store, open_store

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CLOUDS = ("aws", "gcp", "azure")
ADMIN = Caller(uid=0, is_admin=True)


def _accountant(store: Store, clock: VirtualClock) -> Accountant:
    return Accountant(store=store, clock=clock, bus=EventBus(), settings=AccountingSettings())


def _add_pools(accountant: Accountant, per_cloud: int, dollars: int, horizon_days: int) -> None:
    for cloud in CLOUDS:
        for n in range(per_cloud):
            accountant.admin.add_pool(
                ADMIN,
                {
                    "name": f"{cloud}-{n}",
                    "cloud": cloud,
                    "amount": dollars,
                    "expires": START + 86_400 * horizon_days * (n + 1) / per_cloud,
                },
            )


def _launch(
    store: Store, first_job: int, jobs: list[tuple[int, str]], per_job: int, at: float
) -> None:
    """Record jobs (owner uid, project) each with `per_job` running instances, in bulk."""
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO jobs (id, name, owner_uid, owner_name, project, state, spec_json,"
            " base_dir, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'RUNNING', '{}', '/', ?, ?)",
            [
                (first_job + i, f"job{first_job + i}", uid, f"u{uid}", project, at, at)
                for i, (uid, project) in enumerate(jobs)
            ],
        )
        conn.executemany(
            "INSERT INTO instances (provider, instance_id, job_id, client_token, cloud, region,"
            " instance_type, state, hourly_price_micros, launched_at)"
            " VALUES ('sim', ?, ?, 't', ?, 'r1', 'm5.large', 'RUNNING', ?, ?)",
            [
                (
                    f"i{first_job + i}-{k}",
                    first_job + i,
                    CLOUDS[(first_job + i) % 3],
                    96_000 + 1_000 * ((first_job + i) % 50),
                    at,
                )
                for i in range(len(jobs))
                for k in range(per_job)
            ],
        )


def _end_all(store: Store, at: float) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE instances SET state = 'TERMINATED', ended_at = ? WHERE state = 'RUNNING'",
            (at,),
        )
        conn.execute(
            "UPDATE jobs SET state = 'SUCCEEDED', ended_at = ? WHERE state = 'RUNNING'", (at,)
        )


def bench_tick(instances: int, ticks: int) -> dict[str, float]:
    """Median and worst wall and CPU time of a 60 s tick, across UTC midnight. Each instance's
    hourly ledger period is staggered, so about 1/60 of the stretches are posted per tick."""
    launched = START - 60 * (ticks // 2) - 1
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp))
        clock = VirtualClock(launched)
        accountant = _accountant(store, clock)
        _add_pools(accountant, per_cloud=3, dollars=10_000_000, horizon_days=365)
        _launch(store, 1, [(1000 + i % 100, f"p{i % 10}") for i in range(instances)], 1, launched)
        accountant.accrue(launched)  # first sight of the instances: watermarks start at launch
        walls, cpus, posted = [], [], []
        for _ in range(ticks):
            clock.set(clock.now() + 60)
            wall, cpu = time.perf_counter(), time.process_time()
            posted.append(accountant.accrue(clock.now()))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        store.close()
    assert sum(posted) > 0, posted
    return {
        "instances": instances,
        "ticks": ticks,
        "tick_median_ms": statistics.median(walls) * 1000,
        "tick_median_cpu_ms": statistics.median(cpus) * 1000,
        "tick_worst_ms": max(walls) * 1000,
        "tick_worst_cpu_ms": max(cpus) * 1000,
        "ledger_rows_per_tick_median": statistics.median(posted),
        "ledger_rows_per_tick_max": max(posted),
    }


def bench_report(users: int, days: int, tick_hours: float, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp))
        clock = VirtualClock(START)
        accountant = _accountant(store, clock)
        _add_pools(accountant, per_cloud=2, dollars=20_000, horizon_days=days)
        next_job = 1
        began = time.perf_counter()
        for week in range(days // 7 + 1):
            week_start = START + week * 7 * 86_400
            if week_start >= START + days * 86_400:
                break
            _end_all(store, week_start)
            accountant.accrue(week_start)
            _launch(
                store, next_job, [(2000 + u, f"p{u % 10}") for u in range(users)], 2, week_start
            )
            next_job += users
            t = week_start
            while t < min(week_start + 7 * 86_400, START + days * 86_400):
                t += tick_hours * 3600
                accountant.accrue(t)
            clock.set(t)
        build_seconds = time.perf_counter() - began
        ledger_rows = store.conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        results: dict[str, float] = {
            "users": users,
            "ledger_rows": ledger_rows,
            "jobs": next_job - 1,
            "build_seconds": round(build_seconds, 1),
        }
        viewer = Caller(uid=2000, is_admin=False)
        for by in ("user", "project", "cloud", "pool", "job"):
            timings = []
            for _ in range(runs):
                start = time.perf_counter()
                accountant.costs(viewer, by=by, since=START)
                timings.append(time.perf_counter() - start)
            results[f"costs_by_{by}_median_ms"] = statistics.median(timings) * 1000
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            accountant.credits()
            timings.append(time.perf_counter() - start)
        results["credits_median_ms"] = statistics.median(timings) * 1000
        store.close()
    return results


def python_speed_us(runs: int = 200) -> float:
    """Median µs of sum(range(1000)) here: ~6-10 µs on a typical idle laptop, to read the
    figures above against."""
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        sum(range(1000))
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # each 60 s tick posts the stretches of the instances whose staggered hourly period ends in
    # that minute (one in 60): with fewer instances a tick may rightly post nothing
    parser.add_argument("--instances", type=int, default=10_000, help="running instances (>= 60)")
    parser.add_argument("--ticks", type=int, default=9)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--tick-hours", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object, no summary")
    args = parser.parse_args()
    if args.instances < 60:
        parser.error(f"--instances {args.instances}: at least 60, so each tick has rows to post")
    if min(args.ticks, args.users, args.days, args.runs) < 1 or args.tick_hours <= 0:
        parser.error("--ticks, --users, --days, --runs and --tick-hours must be positive")
    speed = python_speed_us()
    tick = bench_tick(args.instances, args.ticks)
    report = bench_report(args.users, args.days, args.tick_hours, args.runs)
    speed = (speed + python_speed_us()) / 2
    print(
        json.dumps(
            {"accrual_tick": tick, "costs_report": report, "sum_range_1000_us": speed}, indent=2
        )
    )
    if args.json:
        return
    print(
        f"tick over {tick['instances']:,} instances: {tick['tick_median_ms']:.1f} ms wall, "
        f"{tick['tick_median_cpu_ms']:.1f} ms CPU (target ≤ 100 ms, CPU ratio "
        f"{tick['tick_median_cpu_ms'] / 100:.2f}); "
        f"costs by user over {report['ledger_rows']:,} ledger rows: "
        f"{report['costs_by_user_median_ms']:.1f} ms (target ≤ 500 ms, "
        f"ratio {report['costs_by_user_median_ms'] / 500:.2f}); "
        f"this machine: sum(range(1000)) = {speed:.0f} µs"
    )


if __name__ == "__main__":
    main()
