"""Absolute mount paths on this host, end to end through a real daemon: the job's commands
use `/data` as SkyPilot tasks do and see the job's own copy there (a bubblewrap view), while
the host's `/data` is never made; and the corpus's airflow_train.yaml (`cpus: 1`, an s3
bucket named from its envs, `/data/file_*`) runs on local against moto's S3 and writes its
model back into the bucket."""

from __future__ import annotations

import io
import itertools
import json
import uuid
from pathlib import Path

import boto3
import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests
from skyd.testing.storage_emulators import moto_s3
from tests.daemon_calls import JsonObject, run_skyctl, wait_ended

CORPUS = Path(__file__).parents[1] / "fixtures" / "skypilot_corpus"


def _ended(daemon: DaemonThread, job_id: int) -> tuple[JsonObject, str]:
    with DaemonClient(daemon.socket_path) as client:
        job = wait_ended(client, job_id, timeout=120)
        log = b"".join(client.job_logs(job_id, follow=False)).decode()
    return job, log


def test_a_local_job_sees_its_absolute_mounts_at_their_paths(tmp_path: Path) -> None:
    top = f"/skyd-test-{uuid.uuid4().hex[:8]}"  # on no host: the view makes it, the host not
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x.txt").write_text("dataset\n")
    (tmp_path / "t.yaml").write_text(
        f"file_mounts:\n  {top}/data: {tmp_path / 'ds'}\n"
        f"run: |\n  cat {top}/data/x.txt\n  echo out > {top}/data/new.txt\n"
        f"  cat {top}/data/new.txt\n"
    )
    daemon = DaemonThread(settings_for_tests(tmp_path)).start()
    try:
        code, out, err = run_skyctl(
            daemon.socket_path, "submit", str(tmp_path / "t.yaml"), "--json"
        )
        assert code == 0, err
        job_id = int(json.loads(out)["id"])
        job, log = _ended(daemon, job_id)
        copy = daemon.settings.jobs_dir / str(job_id) / "mounts" / top.lstrip("/") / "data"
    finally:
        assert daemon.stop() == 0
    assert job["state"] == "SUCCEEDED", (job, log)
    assert "dataset\nout\n" in log, log
    assert not Path(top).exists()
    assert (copy / "new.txt").read_text() == "out\n"  # the job's own copy took the write


def test_the_corpus_airflow_task_runs_on_local_with_its_bucket(tmp_path: Path) -> None:
    with moto_s3() as url:
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="sky-demo-data-test")
        s3.put_object(Bucket="sky-demo-data-test", Key="file_1", Body=b"one\n")
        settings = settings_for_tests(tmp_path)
        settings.local.slots = 2
        daemon = DaemonThread(settings).start()
        try:
            code, out, err = run_skyctl(
                daemon.socket_path,
                "submit",
                str(CORPUS / "airflow_train.yaml"),
                "--env", f"AWS_ENDPOINT_URL={url}",
                "--env", "NUM_EPOCHS=1",
                "--secret", "AWS_ACCESS_KEY_ID=testing",
                "--secret", "AWS_SECRET_ACCESS_KEY=testing",
                "--json",
            )  # fmt: skip
            assert code == 0, err
            job, log = _ended(daemon, int(json.loads(out)["id"]))
        finally:
            assert daemon.stop() == 0
        assert job["state"] == "SUCCEEDED", (job, log)
        assert (job["placement"] or {})["provider"] == "local"
        assert "Epoch 1: Training on /data/file_1" in log, log
        model = s3.get_object(Bucket="sky-demo-data-test", Key="trained_model.txt")
        assert model["Body"].read() == b"Trained model\n"


def test_the_view_refuses_kernel_paths_and_binds_the_hosts_entries_as_they_are() -> None:
    from skyd.runner.path_binds import view_argv

    for bad in ("/proc/x", "/dev/shm/data", "relative/x"):
        with pytest.raises(ValueError):
            view_argv({bad: "/tmp"})
    argv = view_argv({"/skyd-none/data": "/tmp"})
    pairs = list(itertools.pairwise(argv))
    assert ("--dir", "/skyd-none") in pairs and ("--bind", "/tmp") in pairs
    assert ("--dev-bind", "/dev") in pairs and ("--bind", "/proc") in pairs
    last = len(argv) - 1 - argv[::-1].index("--bind")
    assert argv[last : last + 3] == ["--bind", "/tmp", "/skyd-none/data"]


def test_without_a_usable_bubblewrap_the_log_says_where_the_copy_is(tmp_path: Path) -> None:
    from skyd.runner.shim import _path_view

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    log = io.StringIO()
    launch = {"path_binds": {"/data": str(tmp_path / "copy")}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("skyd.runner.path_binds.bwrap", lambda: str(fake))
        assert _path_view(launch, log) is None
    assert f"/data is at {tmp_path / 'copy'}, not at /data: bubblewrap cannot run here" in (
        log.getvalue()
    )
    assert "uid map: Permission denied" in log.getvalue()
    assert (tmp_path / "copy").is_dir()  # an empty mount is still a folder
