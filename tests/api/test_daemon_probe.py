"""The benchmarks' window on a daemon (bench.daemon_probe): what ran inside it is counted, and
the loop lag is the exact worst sample, polled so that no part of the window goes unseen."""

from __future__ import annotations

import asyncio

from bench.daemon_probe import scrape, watch
from skyd.testing.daemon import DaemonThread, wait_until
from skyd.testing.unix_http import request


def test_a_window_counts_the_placement_and_planner_pass_inside_it(daemon: DaemonThread) -> None:
    sock = daemon.socket_path
    with watch(sock) as window:
        status, job, _ = request(sock, "POST", "/v1/jobs", {"command": ["true"], "base_dir": "/"})
        assert status == 201
        wait_until(lambda: request(sock, "GET", f"/v1/jobs/{job['id']}")[1]["state"] == "SUCCEEDED")
        wait_until(lambda: window_passes(sock) > 0)
    assert window.activity["first_placements"] == 1
    assert window.activity["local_launches"] == 1
    assert window.activity["sim_launches"] == 0
    assert window.activity["planner_passes"] >= 1
    assert window.activity["lag_samples"] > 0
    assert window.covered and window.polls >= 1
    assert 0 <= window.lag_max_ms < 60_000


def window_passes(sock: str) -> float:
    return asyncio.run(scrape(sock))[("skyd_planner_passes_total", ())]
