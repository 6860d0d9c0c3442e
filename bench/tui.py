"""Dashboard under load: 10,000 queued jobs and a stream of state changes; how long an event takes
to show in its row, and how long a frame takes while scrolling.

    python -m bench.tui [--jobs 10000] [--rate 50] [--seconds 8] [--keys 200] [--json]

The daemon is the canned one (skyd.testing.canned_daemon, the real wire protocol) in a
separate process, so the
dashboard's process does only the dashboard's work; it publishes `--rate` state changes per
second to random jobs. The app runs headless at 80x24 (Textual still lays out and renders each
frame, it only skips writing to a terminal). Scrolling moves the cursor as the arrow and page
keys do and waits for the frame that shows it; meanwhile a 5 ms timer measures how long the
event loop was ever blocked. Figures are medians and tails, not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import tempfile
import time
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

STATES = ("PROVISIONING", "SETTING_UP", "RUNNING", "RECOVERING")


def serve_fake(socket_path: str, jobs: int, rate: float, go: ProcessEvent) -> None:
    """The fake daemon's process: serve `jobs` pending jobs, then publish `rate` changes/s."""
    from aiohttp import web

    from skyd.testing.canned_daemon import FakeDaemon, fake_job

    async def main() -> None:
        fake = FakeDaemon()
        start = time.time() - 3600
        for job_id in range(1, jobs + 1):
            fake.add_job(fake_job(job_id, at=start + job_id * 0.01, name=f"bench-{job_id}"))
        runner = web.AppRunner(fake.app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.UnixSite(runner, socket_path).start()
        await asyncio.to_thread(go.wait)
        chooser = random.Random(7)
        steps = dict.fromkeys(range(1, jobs + 1), 0)
        interval = 1.0 / rate
        due = time.monotonic()
        while True:
            job_id = chooser.randint(1, jobs)
            state = STATES[
                min(steps[job_id], len(STATES) - 1) if steps[job_id] < 3 else 2 + steps[job_id] % 2
            ]
            steps[job_id] += 1
            fake.publish(job_id, "state", at=time.time(), state=state, reason="bench")
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    asyncio.run(main())


def figures(seconds: list[float]) -> dict[str, float]:
    """Sample count, median, p95 and max in ms (only the count when there are no samples)."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"n": 0}
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": p95, "max_ms": ms[-1]}


def summary(name: str, seconds: dict[str, float]) -> str:
    if not seconds["n"]:
        return f"{name}: no samples"
    return (
        f"{name}: n={seconds['n']:.0f} median {seconds['median_ms']:.1f} ms, "
        f"p95 {seconds['p95_ms']:.1f} ms, max {seconds['max_ms']:.1f} ms"
    )


async def measure(socket_path: str, args: argparse.Namespace, go: ProcessEvent) -> dict[str, Any]:
    from tui.app import SkydDashboard

    class MeasuredDashboard(SkydDashboard):
        """Records, for each event, when the first screen refresh after applying it ran."""

        def __init__(self, socket: str) -> None:
            super().__init__(socket)
            self.latencies: list[float] = []
            self.recording = False

        def event_received(self, event: dict[str, Any]) -> None:
            super().event_received(event)
            if self.recording and event.get("at") is not None:
                at = float(event["at"])
                self.call_after_refresh(lambda: self.latencies.append(time.time() - at))

    app = MeasuredDashboard(socket_path)
    result: dict[str, Any] = {"jobs": args.jobs, "rate": args.rate, "keys": args.keys}
    async with app.run_test(size=(80, 24)) as pilot:
        started = time.monotonic()
        while app.jobs_pane.table.row_count < args.jobs:
            await pilot.pause(0.05)
        result["initial_load_s"] = time.monotonic() - started

        app.recording = True
        go.set()
        await pilot.pause(args.seconds)
        result["event_to_row_idle"] = figures(app.latencies)

        app.latencies.clear()
        table = app.jobs_pane.table
        loop = asyncio.get_running_loop()
        stalls: list[float] = []
        scrolling = True

        async def watch_loop() -> None:
            # how late a 5 ms timer fires: the longest the app could not react to anything
            while scrolling:
                began = time.perf_counter()
                await asyncio.sleep(0.005)
                stalls.append(time.perf_counter() - began - 0.005)

        watcher = asyncio.create_task(watch_loop())
        frames: list[float] = []
        for i in range(args.keys):
            done: asyncio.Future[float] = loop.create_future()
            began = time.perf_counter()
            if i == args.keys // 2:
                table.action_last()
            elif i % 10 == 0:
                table.action_page(1)
            else:
                table.action_move(1)
            app.call_after_refresh(lambda d=done, b=began: d.set_result(time.perf_counter() - b))
            frames.append(await done)
        scrolling = False
        await watcher
        result["move_to_frame"] = figures(frames)
        result["loop_stalls_scrolling"] = figures(stalls)
        result["event_to_row_scrolling"] = figures(app.latencies)
        result["rows_at_end"] = app.jobs_pane.table.row_count
    return result


def report(result: dict[str, Any]) -> list[str]:
    return [
        f"initial load of {result['jobs']} jobs: {result['initial_load_s']:.2f} s",
        summary(
            f"event -> row repainted ({result['rate']:g}/s, idle)", result["event_to_row_idle"]
        ),
        summary(f"cursor move -> frame drawn ({result['keys']} moves)", result["move_to_frame"]),
        summary("event loop stalls while scrolling", result["loop_stalls_scrolling"]),
        summary("event -> row repainted while scrolling", result["event_to_row_scrolling"]),
        f"rows in the table at the end: {result['rows_at_end']}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tui", description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="state changes per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the idle phase")
    parser.add_argument("--keys", type=int, default=200, help="cursor moves while scrolling")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.jobs < 1 or args.keys < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--jobs, --keys, --rate and --seconds must be positive")
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        socket_path = str(Path(tmp) / "fake.sock")
        go = context.Event()
        server = context.Process(
            target=serve_fake, args=(socket_path, args.jobs, args.rate, go), daemon=True
        )
        server.start()
        try:
            while not Path(socket_path).exists():
                time.sleep(0.05)
            result = asyncio.run(measure(socket_path, args, go))
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                print("\n".join(report(result)))
        finally:
            server.terminate()
            server.join(10)


if __name__ == "__main__":
    main()
