"""bench.spot.latency: records the states of real replays and times the policy on them."""

from __future__ import annotations

import json

import pytest

from bench.spot.latency import main, without_summaries
from skyd.market import shipped_trace_dir


def test_latency_reports_every_recorded_decision(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--traces", str(shipped_trace_dir()), "--zones", "us-east-1c,us-west-2a",
            "--starts", "2", "--job-hours", "3", "--repeat", "1", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "skyd" and report["zones"] == ["us-east-1c", "us-west-2a"]
    assert report["decisions"] > 0
    for key in ("ms", "daemon_ms"):
        assert 0 < report[key]["median"] <= report[key]["p99"] <= report[key]["max"]


def test_unknown_policy_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--traces", str(shipped_trace_dir()), "--zones", "us-east-1c", "--policy", "x"])
    assert code == 2
    assert "unknown x" in capsys.readouterr().err


def test_the_daemon_view_drops_the_precomputed_summaries() -> None:
    from bench.spot.latency import record_states
    from skyd.policy import POLICIES

    states = record_states(
        str(shipped_trace_dir()), ["us-east-1c"], POLICIES["skyd"], 1, 0.9, 0.2, 3.0
    )
    raw = without_summaries(states[-1])
    assert all(z.settled is None and z.current_run is None for z in raw.zones)
    # The policy decides the same from the raw history as from the summaries.
    for state in states:
        assert POLICIES["skyd"].decide(without_summaries(state)) == POLICIES["skyd"].decide(state)
