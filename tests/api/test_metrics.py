"""Prometheus metrics (issue 16 point 5): /metrics on the socket parses with the official text
parser and moves when a job runs; optionally also on a loopback TCP address."""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.unix_http import request

REPO = Path(__file__).resolve().parents[2]


def scrape(socket_path: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text, kind = request(socket_path, "GET", "/metrics")
    assert status == 200 and kind.startswith("text/plain"), kind
    return samples(text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_move_when_a_job_runs(daemon: DaemonThread) -> None:
    sock = daemon.socket_path
    before = scrape(sock)
    assert before[("skyd_jobs", (("state", "SUCCEEDED"),))] == 0
    assert before[("skyd_queue_depth", ())] == 0
    assert before[("skyd_placement_latency_seconds_count", ())] == 0
    assert ("skyd_preemptions_total", ()) in before
    assert ("skyd_loop_lag_max_seconds", ()) in before
    assert (
        "skyd_spend_rate_dollars_per_hour",
        (("cloud", ""), ("pool", "cash"), ("state", "active")),
    ) in before
    status, job, _ = request(sock, "POST", "/v1/jobs", {"command": ["true"], "base_dir": "/tmp"})
    assert status == 201
    wait_until(lambda: request(sock, "GET", f"/v1/jobs/{job['id']}")[1]["state"] == "SUCCEEDED")
    after = wait_until(
        lambda: (
            s if (s := scrape(sock))[("skyd_placement_latency_seconds_count", ())] == 1 else None
        )
    )
    assert after[("skyd_jobs", (("state", "SUCCEEDED"),))] == 1
    assert after[("skyd_placement_latency_seconds_sum", ())] >= 0
    launches = ("skyd_provider_calls_total", (("call", "launch"), ("provider", "local")))
    assert after[launches] == before.get(launches, 0) + 1
    assert after[("skyd_events_total", (("kind", "state"),))] >= 3
    # the loop-lag monitor samples as the daemon runs
    assert after[("skyd_loop_lag_seconds_count", ())] > before[("skyd_loop_lag_seconds_count", ())]
    for window in ("2", "10"):
        key = ("skyd_loop_lag_window_max_seconds", (("window", window),))
        assert 0 <= after[key] <= after[("skyd_loop_lag_max_seconds", ())]
        for cpu in ("loop_thread", "process"):
            own = ("skyd_loop_lag_cpu_window_max_seconds", (("cpu", cpu), ("window", window)))
            assert after[own] >= 0  # (≤ the wall figure, but a sample may land between reads)
    # the submit woke the planner (after its debounce): its passes are counted
    passes = ("skyd_planner_passes_total", ())
    wait_until(lambda: scrape(sock)[passes] > before[passes])
    assert ("skyd_planner_global_solves_total", ()) in after
    assert ("skyd_accrual_passes_total", ()) in after


def test_credit_pools_appear_with_balance(daemon: DaemonThread) -> None:
    pool = {"name": "aws-2099", "cloud": "aws", "amount": 1500.25, "expires": "2099-01-01"}
    assert request(daemon.socket_path, "POST", "/v1/credits", pool)[0] == 201
    got = scrape(daemon.socket_path)
    key = (("cloud", "aws"), ("pool", "aws-2099"), ("state", "active"))
    assert got[("skyd_credit_balance_dollars", key)] == 1500.25
    assert got[("skyd_spend_rate_dollars_per_hour", key)] == 0


def test_metrics_over_loopback_tcp_only_when_configured(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = DaemonThread(settings_for_tests(tmp_path, metrics_listen=f":{port}")).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            got = samples(answer.read().decode())
        assert ("skyd_queue_depth", ()) in got
        # only /metrics is offered over TCP: the API needs the socket's peer identity
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/jobs", timeout=10)
            raise AssertionError("the API must not be served over TCP")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        assert daemon.stop() == 0


def test_the_grafana_dashboard_only_uses_exported_metrics(daemon: DaemonThread) -> None:
    dashboard = json.loads((REPO / "docs" / "grafana-skyd.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bskyd_\w+", target["expr"])
    }
    text = request(daemon.socket_path, "GET", "/metrics")[1]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in ["", *suffixes.get(family.type, [])]
    }
    assert used and used <= exported, used - exported
