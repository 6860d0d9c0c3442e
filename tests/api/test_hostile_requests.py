"""Hostile requests (issue 12 point 4): out-of-range integers, odd unicode, NUL bytes, deep JSON
and bad offsets are each a 400 naming the field, never a 500 or a dropped connection, and
change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from skyd.testing.daemon import DaemonThread, wait_until
from skyd.testing.unix_http import raw_request, request

BIG = "9223372036854775808"  # int64 max + 1
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

CASES: list[tuple[str, str, Any, str]] = [
    ("GET", f"/v1/jobs/{BIG}", None, "job_id"),
    ("GET", "/v1/jobs/%C2%B9", None, "job_id"),
    ("POST", f"/v1/jobs/{BIG}/cancel", None, "job_id"),
    ("GET", "/v1/jobs?user=99999999999999999999", None, "user"),
    ("GET", "/v1/jobs?user=4294967295", None, "user"),
    ("GET", "/v1/jobs?user=%C2%B9", None, "user"),
    ("GET", "/v1/jobs?user=ro%00ot", None, "user"),
    ("GET", f"/v1/jobs?cursor={BIG}", None, "cursor"),
    ("GET", "/v1/jobs?cursor=-1", None, "cursor"),
    ("GET", "/v1/jobs?limit=99999999999999999999", None, "limit"),
    ("GET", "/v1/jobs?all=maybe", None, "all"),
    ("GET", f"/v1/events?since={2**80}", None, "since"),
    (
        "POST",
        "/v1/credits",
        {"name": "p", "cloud": "aws", "amount": 1e20, "expires": "2099-01-01"},
        "amount",
    ),
    (
        "POST",
        "/v1/credits",
        {"name": "p", "cloud": "aws", "amount": "1e20", "expires": "2099-01-01"},
        "amount",
    ),
    (
        "POST",
        "/v1/credits",
        {"name": "p", "cloud": "aws", "amount": 10, "expires": 1e300},
        "expires",
    ),
    (
        "POST",
        "/v1/credits",
        {"name": "p", "cloud": "aws", "amount": 10, "expires": 10**400},
        "expires",
    ),
    ("POST", f"/v1/credits/{BIG}0/topup", {"amount": 1}, "pool"),
    (
        "POST",
        "/v1/credits",
        {"name": "p", "cloud": "aws", "amount": 10, "expires": "9999-12-31T23:59:59-05:00"},
        "expires",
    ),  # year 10000 UTC
    ("GET", "/v1/costs?since=-1e308", None, "since"),
    ("GET", "/v1/costs?since=99999999999999999999d", None, "since"),
    ("POST", "/v1/limits/nobody", {"max_hourly": 1e308}, "max_hourly"),
    ("POST", "/v1/limits/nobody", {"max_gpus": 10**30}, "max_gpus"),
    ("POST", "/v1/limits/99999999999999999999", {"max_gpus": 1}, "user"),
    ("POST", "/v1/limits/%C2%B9", {"max_gpus": 1}, "user"),
    ("POST", "/v1/projects/nlp", {"members": [10**30]}, "members"),
    ("POST", "/v1/projects/nlp", {"members": ["ro\u0000ot"]}, "members"),
    ("POST", "/v1/projects/nlp", {"monthly_budget": 1e308}, "monthly_budget"),
    ("POST", "/v1/jobs/%C2%B9/budget-override", {}, "job_id"),
    ("POST", f"/v1/jobs/{BIG}/budget-override", {}, "job_id"),
    ("POST", "/v1/clusters/dev/autostop", {"idle_minutes": 10**30}, "idle_minutes"),
    ("GET", "/v1/prices?gpu=V100:99999999999999999999", None, "gpu"),
    ("GET", "/v1/prices?cloud=mars", None, "cloud"),
    ("GET", "/v1/prices?cloud=aws&region=us-east-9", None, "region"),
]


@pytest.mark.parametrize(("method", "target", "body", "field"), CASES)
def test_bad_values_are_a_400_naming_the_field(
    daemon: DaemonThread, method: str, target: str, body: Any, field: str
) -> None:
    status, answer, kind = request(daemon.socket_path, method, target, body)
    assert (status, kind) == (400, "application/json; charset=utf-8"), (target, answer)
    assert answer["code"] == "bad_request" and answer["field"] == field, answer
    assert answer["message"].startswith(f"{field}: "), answer
    _nothing_changed(daemon)


@pytest.mark.parametrize(
    "target",
    ["/v1/jobs", "/v1/credits", "/v1/clusters", "/v1/optimize", "/v1/projects/nlp",
     "/v1/limits/nobody", "/v1/clusters/dev/stop"],
)  # fmt: skip
@pytest.mark.parametrize("payload", [DEEP, DEEP_OBJECT])
def test_deeply_nested_json_is_a_400(daemon: DaemonThread, target: str, payload: bytes) -> None:
    status, answer, _ = raw_request(daemon.socket_path, "POST", target, payload, "application/json")
    assert status == 400 and answer["field"] == "body", answer
    assert "not valid JSON" in answer["message"]
    _nothing_changed(daemon)


def test_unknown_cloud_and_region_get_did_you_mean(daemon: DaemonThread) -> None:
    status, answer, _ = request(daemon.socket_path, "GET", "/v1/prices?cloud=awz")
    assert status == 400 and "did you mean 'aws'" in answer["message"], answer
    status, answer, _ = request(daemon.socket_path, "GET", "/v1/prices?cloud=mars")
    assert status == 400 and "known: aws" in answer["message"], answer
    status, answer, _ = request(daemon.socket_path, "GET", "/v1/prices?cloud=aws&region=us-east-9")
    assert status == 400 and "'us-east-1'" in answer["message"], answer
    status, rows, _ = request(daemon.socket_path, "GET", "/v1/prices?cloud=AWS&gpu=V100")
    assert status == 200 and rows and {r["cloud"] for r in rows} == {"aws"}


@pytest.mark.parametrize("offset", ["-1", str(2**80), "x"])
def test_bad_log_offset_is_a_400_before_any_byte(daemon: DaemonThread, offset: str) -> None:
    status, job, _ = request(
        daemon.socket_path, "POST", "/v1/jobs", {"command": ["echo", "hi"], "base_dir": "/tmp"}
    )
    assert status == 201
    wait_until(
        lambda: (
            request(daemon.socket_path, "GET", f"/v1/jobs/{job['id']}")[1]["state"] == "SUCCEEDED"
        )
    )
    target = f"/v1/jobs/{job['id']}/logs?offset={offset}"
    status, answer, _ = request(daemon.socket_path, "GET", target)
    assert status == 400 and answer["field"] == "offset", answer
    # an offset past the end of the log is simply nothing more to read
    status, text, _ = request(
        daemon.socket_path, "GET", f"/v1/jobs/{job['id']}/logs?offset={BIG[:-1]}"
    )
    assert (status, text) == (200, "")


def _nothing_changed(daemon: DaemonThread) -> None:
    sock = daemon.socket_path
    assert request(sock, "GET", "/v1/jobs?all=1")[1]["jobs"] == []
    assert request(sock, "GET", "/v1/credits")[1]["pools"] == []
    assert request(sock, "GET", "/v1/limits")[1]["limits"] == []
    # only the default project, which the daemon creates at start
    projects = request(sock, "GET", "/v1/projects")[1]["projects"]
    assert [p["name"] for p in projects] == ["default"]
