"""`skyctl storage ls` / `delete` against the real emulators: buckets a job created are found by
skyd's labels on S3 (moto), GCS (gcp-storage-emulator) and Azure Blob (Azurite); persistent
ones are deleted only with --force; a persistent: false one goes when its job ends."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyctl.__main__ import main as skyctl
from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.storage_emulators import Azurite, azurite, gcs_emulator, moto_s3, moto_s3_client


@pytest.fixture(scope="module")
def endpoints() -> Iterator[tuple[str, str, Azurite]]:
    with moto_s3() as s3, gcs_emulator() as gcs, azurite() as blob:
        yield s3, gcs, blob


@pytest.fixture
def world(
    tmp_path: Path, endpoints: tuple[str, str, Azurite], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DaemonThread, DaemonClient]]:
    s3, gcs, blob = endpoints
    # the daemon's own credentials, as a lab server has them for launching instances
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", blob.connection_string)
    for name in ("R2_ENDPOINT_URL", "CLOUDFLARE_ACCOUNT_ID", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_for_tests(tmp_path)
    settings.data.s3_endpoint_url = s3
    settings.data.gcs_endpoint_url = gcs
    daemon = DaemonThread(settings).start()
    with DaemonClient(daemon.socket_path) as client:
        yield daemon, client
    assert daemon.stop() == 0


def _skyctl(daemon: DaemonThread, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = skyctl(["--socket", daemon.socket_path, *args])
    return code, out.getvalue(), err.getvalue()


def test_ls_and_delete_the_buckets_a_job_created(
    world: tuple[DaemonThread, DaemonClient],
    endpoints: tuple[str, str, Azurite],
    tmp_path: Path,
) -> None:
    daemon, client = world
    s3_url, gcs_host, blob = endpoints
    moto_s3_client(s3_url).create_bucket(
        Bucket="lab-foreign"
    )  # not skyd's: never listed nor deleted
    go = tmp_path / "go"
    task = (
        f"envs: {{AWS_ENDPOINT_URL: '{s3_url}', STORAGE_EMULATOR_HOST: '{gcs_host}'}}\n"
        "file_mounts:\n"
        "  /a:\n    name: lab-keep-s3\n"
        "  /b:\n    name: lab-eph-gcs\n    store: gcs\n    persistent: false\n"
        "  /c:\n    name: lab-keep-az\n    store: azure\n"
        f"run: while [ ! -e {go} ]; do sleep 0.05; done\n"
    )
    secrets = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AZURE_STORAGE_CONNECTION_STRING": blob.connection_string,
    }
    job = client.submit_task(task, str(tmp_path), None, overrides={"secrets": secrets})
    wait_until(lambda: client.get_job(int(job["id"]))["state"] == "RUNNING" or None, timeout=60)

    code, out, err = _skyctl(daemon, "storage", "ls")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {"lab-eph-gcs", "lab-keep-az", "lab-keep-s3"}
    assert "us-east-1" in lines["lab-keep-s3"] and f"job {job['id']}" in lines["lab-keep-s3"]
    assert "no (deleted when its job ends)" in lines["lab-eph-gcs"]
    assert "r2: not listed" in err
    listed = client.request("GET", "/v1/storage")
    owner = {b["name"]: b["created_by"] for b in listed["buckets"]}
    assert owner["lab-keep-s3"] == job["owner"]

    code, out, err = _skyctl(daemon, "storage", "delete", "lab-keep-s3", "lab-keep-az")
    assert code == 1 and "--force lab-keep-s3 lab-keep-az" in err and "nothing deleted" in err
    assert "lab-keep-s3" in {b["Name"] for b in moto_s3_client(s3_url).list_buckets()["Buckets"]}
    code, _, err = _skyctl(daemon, "storage", "delete", "lab-foreign")
    assert code == 1 and "no bucket skyd created is named lab-foreign" in err

    code, out, err = _skyctl(daemon, "storage", "delete", "--force", "lab-keep-s3", "lab-keep-az")
    assert code == 0, err
    assert "deleted s3://lab-keep-s3" in out and "deleted az://devstoreaccount1/lab-keep-az" in out
    names = {b["Name"] for b in moto_s3_client(s3_url).list_buckets()["Buckets"]}
    assert "lab-keep-s3" not in names and "lab-foreign" in names

    go.touch()
    ended = wait_until(
        lambda: (
            j if (j := client.get_job(int(job["id"])))["state"] in ("SUCCEEDED", "FAILED") else None
        ),
        timeout=60,
    )
    assert ended["state"] == "SUCCEEDED"
    code, out, _ = _skyctl(daemon, "storage", "ls", "--json")
    assert code == 0 and "lab-eph-gcs" not in out


def test_delete_validates_its_input(world: tuple[DaemonThread, DaemonClient]) -> None:
    daemon, _ = world
    code, _, err = _skyctl(daemon, "storage", "delete", "Bad_Name!")
    assert code == 1 and "names" in err
