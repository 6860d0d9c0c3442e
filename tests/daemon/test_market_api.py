"""`skyctl prices` and `skyctl optimize` against a real daemon with the shipped catalogs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from skyctl.__main__ import main as skyctl
from skyctl.client import ApiError, DaemonClient
from skyd.testing.daemon import DaemonThread

REPO = Path(__file__).resolve().parents[2]
OFFERING_FIELDS = {
    "cloud",
    "region",
    "zone",
    "instance_type",
    "accelerator_name",
    "accelerator_count",
    "vcpus",
    "memory_gib",
    "price",
    "spot_price",
}


def _run(daemon: DaemonThread, *args: str) -> tuple[int, str]:
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = skyctl(["--socket", daemon.socket_path, *args])
    return code, out.getvalue()


def test_prices_json_lists_cheapest_offerings_per_cloud(daemon: DaemonThread) -> None:
    code, text = _run(daemon, "prices", "--gpu", "a100:1", "--json")
    assert code == 0
    rows = json.loads(text)
    assert set(rows[0]) >= OFFERING_FIELDS
    assert {r["accelerator_name"] for r in rows} == {"A100"}
    assert {r["accelerator_count"] for r in rows} == {1}
    by_cloud = {r["cloud"]: r for r in rows}
    assert by_cloud["lambda"]["price"] == 1.29  # the cheapest on-demand A100 in the catalogs
    assert len(rows) == len(by_cloud)  # one row per cloud without --all-regions
    code, text = _run(daemon, "prices", "--gpu", "A100:1", "--all-regions", "--json")
    assert len(json.loads(text)) > len(rows)
    code, text = _run(daemon, "prices", "--gpu", "V100", "--spot", "--cloud", "aws", "--json")
    spot_rows = json.loads(text)
    assert spot_rows and all(r["cloud"] == "aws" and r["spot_price"] for r in spot_rows)


def test_prices_unknown_gpu_names_the_fix(client: DaemonClient) -> None:
    with pytest.raises(ApiError) as err:
        client.request("GET", "/v1/prices", query={"gpu": "A1000"})
    assert err.value.status == 400 and "A100" in err.value.message


def test_price_history_of_an_offering(client: DaemonClient) -> None:
    history = client.request(
        "GET", "/v1/prices/history", query={"offering": "aws/us-east-1/use1-az2/p3.2xlarge"}
    )
    assert history["offering"]["instance_type"] == "p3.2xlarge"
    assert isinstance(history["history"], list)
    with pytest.raises(ApiError) as err:
        client.request("GET", "/v1/prices/history", query={"offering": "aws/nowhere/x/y"})
    assert err.value.status == 400 and "offering" in err.value.message


def test_optimize_explains_a_local_job_and_a_gpu_job(daemon: DaemonThread) -> None:
    cpu_task = REPO / "examples" / "hello.yaml"
    code, text = _run(daemon, "optimize", str(cpu_task), "--json")
    assert code == 0
    result = json.loads(text)
    assert result["chosen"]["cloud"] == "local" and result["chosen"]["hourly_price"] == 0
    chosen_rows = [c for c in result["candidates"] if c["chosen"]]
    assert len(chosen_rows) == 1

    gpu_task = REPO / "examples" / "cloud" / "gpu_spot_deadline.yaml"
    code, text = _run(daemon, "optimize", str(gpu_task), "--json")
    result = json.loads(text)
    assert result["chosen"] is None  # only `local` is enabled here
    assert result["candidates"][0]["excluded"] == "provider_disabled"
    reasons = {c["excluded"] for c in result["candidates"]}
    assert "pinned_elsewhere" in reasons or "over_max_price" in reasons
    hypothetical = result["if_all_providers_enabled"]
    assert hypothetical["hourly_price"] <= 4.0  # the task's max_hourly_cost
    code, text = _run(daemon, "optimize", str(gpu_task))
    # placed, on a cloud whose provider is not enabled here: the same 0 as with --json
    assert code == 0 and "With every provider enabled it would run on" in text
