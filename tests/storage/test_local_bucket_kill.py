"""A job run as plain processes on this host (skyd.runner.shim, boto3 against moto's S3 server)
that is cancelled still has what it wrote into its MOUNT bucket, and what it writes on the
SIGTERM, written back; a write-back that hangs is cut at `cancel_write_back_seconds` and
named in the job's log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.storage_emulators import moto_s3, moto_s3_client, quiet_relay
from tests.daemon_calls import wait_ended

SECRETS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
RUN = """\
  head -c 5000 /dev/zero > out/model.bin
  trap 'echo saved-on-term > out/on-term.txt; exit 0' TERM
  echo ready
  while :; do sleep 0.1; done
"""


def _log(client: DaemonClient, job_id: int) -> str:
    return b"".join(client.job_logs(job_id, follow=False)).decode()


def _cancelled(client: DaemonClient, task: str, tmp_path: Path, before: Any) -> tuple[Any, float]:
    """Submit `task`, cancel it once its log says `ready` (`before` just before); the
    cancelled job and how long the cancel took."""
    job_id = int(
        client.submit_task(task, str(tmp_path), None, overrides={"secrets": SECRETS})["id"]
    )
    wait_until(lambda: "ready" in _log(client, job_id), timeout=60)
    before()
    started = time.monotonic()
    client.cancel_job(job_id)
    job = wait_ended(client, job_id, timeout=60)
    return job, time.monotonic() - started


def _task(endpoint: str, bucket: str) -> str:
    # ~/out: in the job's workdir (a job under bwrap is killed the same way:
    # test_sigterm_reaches_job)
    return (
        f"envs: {{AWS_ENDPOINT_URL: '{endpoint}'}}\n"
        f"file_mounts:\n  ~/out:\n    source: s3://{bucket}\n    mode: MOUNT\n"
        f"run: |\n{RUN}"
    )


def test_a_cancelled_local_jobs_output_and_what_it_saves_on_sigterm_are_written_back(
    tmp_path: Path,
) -> None:
    with moto_s3() as url:
        s3 = moto_s3_client(url)
        s3.create_bucket(Bucket="lab-local-kill")
        daemon = DaemonThread(settings_for_tests(tmp_path)).start()
        try:
            with DaemonClient(daemon.socket_path) as client:
                job, _ = _cancelled(client, _task(url, "lab-local-kill"), tmp_path, lambda: None)
                log = _log(client, int(job["id"]))
            model = s3.get_object(Bucket="lab-local-kill", Key="model.bin")["Body"].read()
            saved = s3.get_object(Bucket="lab-local-kill", Key="on-term.txt")["Body"].read()
        finally:
            assert daemon.stop() == 0
    assert job["state"] == "CANCELLED", job
    assert len(model) == 5000, log
    assert saved == b"saved-on-term\n"
    assert "2 files written back to s3://lab-local-kill" in log
    assert "killed (signal 15)" in log


def test_a_local_write_back_that_hangs_is_cut_at_its_allowance_and_logged(
    tmp_path: Path,
) -> None:
    allowance = 2.0
    with moto_s3() as url, quiet_relay(url) as relay:
        s3 = moto_s3_client(url)
        s3.create_bucket(Bucket="lab-local-hang")
        settings = settings_for_tests(tmp_path)
        settings.local.cancel_write_back_seconds = allowance
        daemon = DaemonThread(settings).start()
        try:
            with DaemonClient(daemon.socket_path) as client:
                task = _task(relay.url, "lab-local-hang")
                job, took = _cancelled(client, task, tmp_path, lambda: setattr(relay, "hang", True))
                log = _log(client, int(job["id"]))
            listed = s3.list_objects_v2(Bucket="lab-local-hang").get("KeyCount", 0)
        finally:
            assert daemon.stop() == 0
    assert job["state"] == "CANCELLED", job
    # boto3 would wait a minute per try; the kill waits the allowance, and its 10 s margin
    grace = settings.local.cancel_grace_seconds
    assert allowance <= took < grace + allowance + 10.0, (took, log)
    assert "not written back: s3://lab-local-hang" in log, log
    assert listed == 0
