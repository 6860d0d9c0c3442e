"""Benchmark: how far a running job spends past its budget before skyd stops or holds it.

    python -m bench.budgets [--accrual 1.0] [--budget 1.0] [--price 360] [--json]

Two private daemons (`at_budget = "stop"` and `"hold"`) with the `sim` provider at a steep
on-demand price (default $360/h, $0.10 a second) and accelerated accrual (default every
second). A project's monthly budget (default $1.00) binds a job that was admitted on its
estimate and then runs on. Reported per policy: what the project was charged, what that is past
the budget, and the same in accrual ticks' worth of spending (goal: ≤ 1 tick).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.store import ledger as ledger_store
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until


def write_trace(root: Path, price: float) -> Path:
    """A sim market with one always-available zone at `price` dollars an hour on demand."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["date,availability"] + [
        f"2026-01-01 00:{i // 60:02d}:{i % 60:02d},1" for i in range(600)
    ]
    (root / "z.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "name": "steep",
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": price,
        "zones": {"z": {"region": "r1", "availability_file": "z.csv", "spot_price": price}},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def task(project: str, estimate_seconds: float) -> str:
    return (
        f"name: over\nproject: {project}\nresources:\n  accelerators: V100:1\n"
        f"  use_spot: false\nestimated_runtime: {estimate_seconds:g}s\nrun: sleep 600\n"
    )


def books_final(daemon: DaemonThread, job_id: int) -> bool:
    """Whether every instance of the job is charged to its end (read beside the daemon)."""
    assert daemon.daemon.store is not None
    reader = daemon.daemon.store.reader()
    try:
        return ledger_store.job_settled(reader.conn, job_id)
    finally:
        reader.close()


def started_again(job: dict[str, Any], acted: tuple[str, ...]) -> bool:
    """Whether the job left its budget state, or launched again after the budget acted."""
    events = job["events"]
    acted_at = max(i for i, e in enumerate(events) if e["kind"] == "budget")
    launched = {"PROVISIONING", "SETTING_UP", "RUNNING"}
    return job["state"] not in acted or any(e.get("state") in launched for e in events[acted_at:])


def measure(
    root: Path, *, at_budget: str, accrual: float, budget: float, price: float
) -> dict[str, Any]:
    """Run one daemon until its budget stops or holds the job; the money and the ticks."""
    settings = settings_for_tests(root)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(root / "trace", price)
    settings.sim.provisioning_delay_seconds = 0.0
    settings.local.slots = 0  # nothing runs for free here: the job must go to the sim cloud
    settings.accounting.accrual_interval_seconds = accrual
    settings.accounting.at_budget = at_budget  # type: ignore[assignment]
    tick_worth = price * accrual / 3600
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            client.request("POST", "/v1/projects/p1", body={"monthly_budget": budget})
            # admitted on its estimate (half the budget), then it runs on
            estimate = 0.5 * budget / price * 3600
            job_id = int(client.submit_task(task("p1", estimate), str(root), None)["id"])
            wait_until(lambda: client.get_job(job_id)["state"] == "RUNNING", timeout=60)
            started = time.monotonic()
            # "stop" fails the job; "hold" releases its instances and keeps it waiting
            acted = ("FAILED",) if at_budget == "stop" else ("RECOVERING", "PENDING")

            def enforced() -> dict[str, Any] | None:
                job = client.get_job(job_id)
                return (
                    job
                    if job["state"] in acted and any(e["kind"] == "budget" for e in job["events"])
                    else None
                )

            try:
                job = wait_until(enforced, timeout=120)
            except TimeoutError:
                job = client.get_job(job_id)
                events = [(e["kind"], e.get("state"), e["reason"][:90]) for e in job["events"]]
                raise TimeoutError(f"job {job_id} not {acted} by its budget: {events}") from None
            stopped_after = time.monotonic() - started
            # the job's cost is final once accrual has charged its instances to their ends
            # (their watermarks reached the end: settled); by then the accountant has run
            # its budget actions again on the spent budget, and the scheduler has seen them
            wait_until(
                lambda: books_final(daemon, job_id) or client.get_job(job_id)["state"] not in acted,
                timeout=60,
            )
            job = client.get_job(job_id)
            relaunched = started_again(job, acted)
            rows = client.request("GET", "/v1/costs", query={"by": "project"})["rows"]
            budgets = client.request("GET", "/v1/budgets")
    finally:
        assert daemon.stop() == 0
    spent = sum(float(r["amount"]) for r in rows if r["key"] == "p1")
    past = max(0.0, spent - budget)
    return {
        "at_budget": at_budget,
        "state": job["state"],
        "reason": next(e["reason"] for e in job["events"] if e["kind"] == "budget"),
        "budget": budget,
        "spent": round(spent, 6),
        "past_budget": round(past, 6),
        "tick_worth": round(tick_worth, 6),
        "past_budget_ticks": round(past / tick_worth, 3),
        "seconds_running": round(stopped_after, 2),
        "started_again_while_spent": relaunched,
        "budget_rows": budgets["budgets"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accrual", type=float, default=1.0, help="accrual tick, seconds")
    parser.add_argument("--budget", type=float, default=1.0, help="the project's budget, $")
    parser.add_argument("--price", type=float, default=360.0, help="on-demand $/h")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="skyd-bud-") as tmp:
        for policy in ("stop", "hold"):
            results[policy] = measure(
                Path(tmp) / policy,
                at_budget=policy,
                accrual=args.accrual,
                budget=args.budget,
                price=args.price,
            )
    summary = {
        "accrual_seconds": args.accrual,
        "price_per_hour": args.price,
        "policies": {k: {x: v[x] for x in v if x != "budget_rows"} for k, v in results.items()},
        "max_past_budget_ticks": max(r["past_budget_ticks"] for r in results.values()),
    }
    if args.json:
        print(json.dumps(summary))
        return
    for name, r in summary["policies"].items():
        print(
            f"{name:>4}: spent ${r['spent']:.4f} of ${r['budget']:.2f}; past the budget "
            f"${r['past_budget']:.4f} = {r['past_budget_ticks']:.2f} ticks' worth "
            f"(job {r['state']} after {r['seconds_running']:.1f} s)"
        )


if __name__ == "__main__":
    main()
