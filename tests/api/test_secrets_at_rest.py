"""Secrets at rest (issue 12 point 8): a job's files are its owner's alone (0700 dirs, 0600
files), skyd.db and its key are 0600, and env values are encrypted in skyd.db; the job still
gets them, `show` shows envs and redacts secrets."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest

from skyd.errors import StoreError
from skyd.store import open_store
from skyd.store.sealing import KEY_FILE, PREFIX, open_spec_json, open_value
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.unix_http import request, request_as

NOBODY = 65534

TOKEN = "tok-5b1e0c9a2f7d44e8"
PASSWORD = "hunter2-very-secret-8c1"
TASK = f"""
name: sealed
envs:
  MY_TOKEN: {TOKEN}
secrets:
  DB_PASSWORD: {PASSWORD}
run: |
  echo "token=$MY_TOKEN password=$DB_PASSWORD"
  touch made-by-job.txt
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_job_files_are_private_and_envs_sealed_in_the_db(daemon: DaemonThread) -> None:
    sock = daemon.socket_path
    status, job, _ = request(sock, "POST", "/v1/jobs", {"task_yaml": TASK, "base_dir": "/tmp"})
    assert status == 201, job
    wait_until(lambda: request(sock, "GET", f"/v1/jobs/{job['id']}")[1]["state"] == "SUCCEEDED")

    # the job got the real values
    status, log, _ = request(sock, "GET", f"/v1/jobs/{job['id']}/logs")
    assert f"token={TOKEN} password={PASSWORD}" in log

    state = daemon.settings.state_dir
    job_dir = state / "jobs" / str(job["id"])
    attempt = job_dir / "attempt-1"
    assert mode(job_dir) == 0o700 and mode(attempt) == 0o700
    for private in (
        job_dir / "job.log",
        attempt / "launch.json",
        attempt / "status.json",
        attempt / "shim.err",
        state / "skyd.db",
        state / KEY_FILE,
    ):
        assert mode(private) == 0o600, private
    # the job's own files get the umask the daemon started with, not skyd's private one
    umask = os.umask(0)
    os.umask(umask)
    assert mode(job_dir / "workdir" / "made-by-job.txt") == 0o666 & ~umask

    # no plaintext value in the database files (the WAL included)
    for db_file in state.glob("skyd.db*"):
        data = db_file.read_bytes()
        assert TOKEN.encode() not in data and PASSWORD.encode() not in data, db_file
    with sqlite3.connect(state / "skyd.db") as conn:
        (spec_json,) = conn.execute(
            "SELECT spec_json FROM jobs WHERE id = ?", (job["id"],)
        ).fetchone()
    envs = json.loads(spec_json)["envs"]
    assert all(value.startswith(PREFIX) for value in envs.values())
    assert json.loads(open_spec_json(spec_json))["envs"]["MY_TOKEN"] == TOKEN

    # show: envs shown, secrets redacted (nothing secret in the answer)
    status, shown, _ = request(sock, "GET", f"/v1/jobs/{job['id']}")
    assert shown["task"]["envs"]["MY_TOKEN"] == TOKEN
    assert PASSWORD not in json.dumps(shown) and PREFIX not in json.dumps(shown)


def test_specs_stored_before_sealing_are_sealed_when_the_store_opens(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.conn.execute(  # as an older skyd stored it: plain values
        "INSERT INTO jobs (name, owner_uid, owner_name, project, priority, state, spec_json,"
        " base_dir, created_at, updated_at) VALUES ('old', 0, 'root', NULL, 0, 'PENDING', ?,"
        " '/tmp', 1, 1)",
        (json.dumps({"name": "old", "envs": {"K": "plain-value"}}, separators=(",", ":")),),
    )
    # an older skyd's store: without the table that remembers sealing was done
    store.conn.execute("DROP TABLE store_flags")
    store.conn.execute("DELETE FROM schema_migrations WHERE name = '0010_store_flags'")
    store.close()
    store = open_store(tmp_path)
    (spec_json,) = store.conn.execute("SELECT spec_json FROM jobs").fetchone()
    store.close()
    assert "plain-value" not in spec_json
    assert json.loads(open_spec_json(spec_json))["envs"] == {"K": "plain-value"}
    assert mode(tmp_path / KEY_FILE) == 0o600
    # the key is kept: a reopen reads the same one, values still open
    assert open_value(json.loads(spec_json)["envs"]["K"]) == "plain-value"


def test_sealing_old_specs_is_done_once_not_at_every_start(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    store = open_store(tmp_path)
    # a row written behind the store's back after that (no skyd writes plain values now)
    store.conn.execute(
        "INSERT INTO jobs (name, owner_uid, owner_name, project, priority, state, spec_json,"
        " base_dir, created_at, updated_at) VALUES ('x', 0, 'root', NULL, 0, 'PENDING', ?,"
        " '/tmp', 1, 1)",
        (json.dumps({"name": "x", "envs": {"K": "plain-value"}}, separators=(",", ":")),),
    )
    store.close()
    store = open_store(tmp_path)
    (spec_json,) = store.conn.execute("SELECT spec_json FROM jobs").fetchone()
    store.close()
    assert "plain-value" in spec_json  # the start did not scan the jobs again


def test_a_value_sealed_with_an_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="does not have"):
        open_value(f"{PREFIX}000000000000:gAAAAA")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to ask as another user")
def test_other_users_see_env_names_not_values(tmp_path: Path) -> None:
    public = Path(tempfile.mkdtemp(prefix="skyd-envs-"))
    public.chmod(0o755)  # the other user must reach the socket
    settings = settings_for_tests(tmp_path, socket_path=public / "skyd.sock", socket_mode=0o666)
    daemon = DaemonThread(settings).start()
    try:
        body = {"task_yaml": TASK, "base_dir": "/tmp"}
        status, job, _ = request(daemon.socket_path, "POST", "/v1/jobs", body)
        assert status == 201, job
        status, seen = request_as(NOBODY, daemon.socket_path, "GET", f"/v1/jobs/{job['id']}")
        assert status == 200
        assert seen["task"]["envs"] == {"MY_TOKEN": "<redacted>", "DB_PASSWORD": "<redacted>"}
        assert TOKEN not in json.dumps(seen) and PASSWORD not in json.dumps(seen)
        target = f"/v1/jobs/{job['id']}"
        owner_view = wait_until(
            lambda: (
                (j := request(daemon.socket_path, "GET", target)[1])["state"] == "SUCCEEDED" and j
            )
        )
        assert owner_view["task"]["envs"]["MY_TOKEN"] == TOKEN
    finally:
        assert daemon.stop() == 0
        shutil.rmtree(public, ignore_errors=True)
