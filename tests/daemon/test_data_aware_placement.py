"""Data-aware placement end to end: a real daemon looks its task's S3 bucket up in moto's S3
server (GetBucketLocation and a listing, through aioboto3 over HTTP on loopback) and
`skyctl optimize` prices moving the data: a 2 TB dataset in aws/us-east-1 keeps a V100 job
there although GCP's V100 is cheaper per hour; a 2 GB one does not."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from skyctl.__main__ import main as skyctl
from skyd.testing.daemon import DaemonThread, settings_for_tests

TASK = """\
resources:
  accelerators: V100:1
estimated_runtime: 10h
file_mounts:
  /data: s3://egress-data/train
run: python train.py
"""


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="egress-data")  # no LocationConstraint: us-east-1
    client.put_object(Bucket="egress-data", Key="train/a.bin", Body=b"a" * 1000)
    client.put_object(Bucket="egress-data", Key="train/b.bin", Body=b"b" * 2000)
    client.put_object(Bucket="egress-data", Key="other/c.bin", Body=b"c" * 5000)
    client.put_object(Bucket="egress-data", Key="training-other/d.bin", Body=b"d" * 7000)
    client.create_bucket(
        Bucket="egress-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    client.put_object(Bucket="egress-eu", Key="x.bin", Body=b"x" * 4000)
    yield url
    server.stop()


@pytest.fixture
def data_daemon(
    tmp_path: Path, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaemonThread]:
    # the daemon's own credentials (as on a lab's server), not the job's
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = settings_for_tests(tmp_path)
    settings.data.s3_endpoint_url = s3_url
    running = DaemonThread(settings).start()
    yield running
    assert running.stop() == 0


def optimize(daemon: DaemonThread, path: Path, *extra: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = skyctl(["--socket", daemon.socket_path, "optimize", str(path), *extra])
    return code, out.getvalue() + err.getvalue()


def where(choice: dict[str, Any]) -> tuple[str, str]:
    return choice["cloud"], choice["region"]


def test_a_2_tb_dataset_in_us_east_1_keeps_the_job_next_to_it(
    data_daemon: DaemonThread, tmp_path: Path
) -> None:
    task = tmp_path / "train.yaml"
    task.write_text(TASK + "inputs:\n  s3://egress-data/train: 2000\n")
    code, out = optimize(data_daemon, task, "--json")
    assert code == 0, out
    view = json.loads(out)
    # the test daemon serves only `local`: where it would go with every cloud enabled
    chosen = view["if_all_providers_enabled"]
    assert where(chosen) == ("aws", "us-east-1"), chosen
    assert chosen["egress_cost"] == 0 and chosen["compute_cost"] == chosen["expected_cost"]
    [move] = view["data"]
    assert move["url"] == "s3://egress-data/train"
    assert (move["cloud"], move["region"]) == ("aws", "us-east-1")  # GetBucketLocation
    assert (move["gigabytes"], move["size_from"]) == (2000, "inputs")
    rows = view["candidates"]
    gcp = min((r for r in rows if r["cloud"] == "gcp"), key=lambda r: r["expected_cost"])
    assert gcp["egress_cost"] == pytest.approx(2000 * 0.09)
    assert gcp["compute_cost"] < chosen["compute_cost"]  # GCP's V100 is cheaper per hour …
    assert gcp["expected_cost"] > chosen["expected_cost"]  # … but not with the data moved


def test_a_2_gb_dataset_goes_to_the_cheaper_cloud(
    data_daemon: DaemonThread, tmp_path: Path
) -> None:
    task = tmp_path / "train.yaml"
    task.write_text(TASK + "inputs:\n  s3://egress-data/train: 2\n")
    code, out = optimize(data_daemon, task, "--json")
    assert code == 0, out
    chosen = json.loads(out)["if_all_providers_enabled"]
    assert chosen["cloud"] == "gcp", chosen
    assert chosen["egress_cost"] == pytest.approx(2 * 0.09)
    assert chosen["expected_cost"] == pytest.approx(chosen["compute_cost"] + 0.18)
    code, text = optimize(data_daemon, task)
    assert code == 0
    assert "EGRESS" in text and "COMPUTE" in text
    assert "Data: reads s3://egress-data/train (aws/us-east-1), 2 GB from inputs" in text


def test_without_a_size_hint_the_bucket_is_listed_and_its_region_asked(
    data_daemon: DaemonThread, tmp_path: Path
) -> None:
    task = tmp_path / "train.yaml"
    task.write_text(TASK.replace("s3://egress-data/train", "s3://egress-eu"))
    code, out = optimize(data_daemon, task, "--json")
    assert code == 0, out
    [move] = json.loads(out)["data"]
    assert (move["cloud"], move["region"]) == ("aws", "eu-west-1")
    assert move["size_from"] == "bucket listing"
    assert move["gigabytes"] == pytest.approx(4000 / 1e9)
    task.write_text(TASK)  # the prefix only: 3,000 of the bucket's 15,000 bytes
    code, out = optimize(data_daemon, task, "--json")
    [move] = json.loads(out)["data"]
    assert move["gigabytes"] == pytest.approx(3000 / 1e9) and move["region"] == "us-east-1"


def test_an_unknown_bucket_is_priced_without_a_region_and_says_why(
    data_daemon: DaemonThread, tmp_path: Path
) -> None:
    task = tmp_path / "train.yaml"
    task.write_text(
        TASK.replace("egress-data/train", "no-such-bucket")
        + "inputs:\n  s3://no-such-bucket: 100\n"
    )
    code, out = optimize(data_daemon, task, "--json")
    assert code == 0, out
    [move] = json.loads(out)["data"]
    assert move["region"] is None
    assert "location unknown" in move["note"] and "NoSuchBucket" in move["note"]
    chosen = json.loads(out)["if_all_providers_enabled"]
    # not known to be in any region of AWS: moving it anywhere costs at least inter-region
    assert chosen["egress_cost"] >= 100 * 0.02 - 1e-9


def test_a_submitted_job_records_the_egress_in_its_placement(
    data_daemon: DaemonThread, tmp_path: Path
) -> None:
    from skyctl.client import DaemonClient
    from skyd.testing.daemon import wait_until

    text = (
        "inputs:\n  s3://egress-data/train: 10\n"
        "file_mounts:\n  /data: s3://egress-data/train\nrun: echo trained\n"
    )
    with DaemonClient(data_daemon.socket_path) as client:
        job_id = int(client.submit_task(text, str(tmp_path), None)["id"])
        job = wait_until(lambda: (j := client.get_job(job_id)).get("placement") and j)
    placement = job["placement"]
    # the lab's own host: the 10 GB leave AWS at its internet rate
    assert placement["cloud"] == "local"
    assert placement["egress_cost"] == pytest.approx(10 * 0.09)
    assert "data egress" in placement["why"]
    with DaemonClient(data_daemon.socket_path) as client:
        wait_until(
            lambda: client.get_job(job_id)["state"] in ("SUCCEEDED", "FAILED", "FAILED_SETUP")
        )
