"""A cancelled job's own process gets the SIGTERM and its grace before anything is killed, also
where skyd puts something between it and the shim's process group: bubblewrap (a local job
with an absolute file-mount path, under the real `bwrap`) and a task's container (`image_id:
docker:` on local, the strict docker stand-in, whose `exec` runs the command in a session of
its own, out of the caller's reach, as runc does). Each job writes a file only in its SIGTERM
handler; the file is there after the cancel."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.runner.process import ProcessRunner
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from tests.daemon_calls import wait_ended

# the handler runs after the loop's current `sleep` (which the group's SIGTERM ends too); its
# save takes a while, as a checkpoint's does, well within the tests' 2 s grace
RUN = """\
  trap 'sleep 0.5; echo saved-on-term > {saved}; exit 0' TERM
  echo ready
  while :; do sleep 0.1; done
"""


def _cancel_when_ready(tmp_path: Path, task: str) -> tuple[dict[str, object], str]:
    daemon = DaemonThread(settings_for_tests(tmp_path)).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            job_id = int(client.submit_task(task, str(tmp_path), None)["id"])

            def log() -> str:
                return b"".join(client.job_logs(job_id, follow=False)).decode()

            wait_until(lambda: "ready" in log(), timeout=60)
            client.cancel_job(job_id)
            job = wait_ended(client, job_id, timeout=60)
            text = log()
    finally:
        assert daemon.stop() == 0
    return job, text


def test_a_job_under_bubblewrap_saves_on_the_cancels_sigterm(tmp_path: Path) -> None:
    assert shutil.which("bwrap"), "bubblewrap is installed by .ci/setup.d/45-bubblewrap.sh"
    top = f"/skyd-test-{uuid.uuid4().hex[:8]}"  # an absolute mount: the job runs under bwrap
    (tmp_path / "ds").mkdir()
    saved = tmp_path / "saved.txt"
    task = f"file_mounts:\n  {top}/data: {tmp_path / 'ds'}\nrun: |\n  ls {top}/data\n"
    job, log = _cancel_when_ready(tmp_path, task + RUN.format(saved=saved))
    assert job["state"] == "CANCELLED", (job, log)
    assert "not at" not in log, log  # it did run in the view
    assert saved.read_text() == "saved-on-term\n", log
    assert "killed (signal 15)" in log


def test_a_job_in_its_container_saves_on_the_cancels_sigterm(
    tmp_path: Path, docker_on_path: Path
) -> None:
    # the container sees the job's directory only: the handler writes into its workdir
    task = "resources: {image_id: 'docker:python:3.12-slim'}\nrun: |\n"
    job, log = _cancel_when_ready(tmp_path, task + RUN.format(saved="saved.txt"))
    assert job["state"] == "CANCELLED", (job, log)
    saved = list(tmp_path.glob("**/workdir/saved.txt"))
    assert [p.read_text() for p in saved] == ["saved-on-term\n"], log
    assert "killed (signal 15)" in log
    calls = docker_on_path.read_text()
    assert '"rm", "-f"' in calls  # and the container is gone after


def test_a_slow_container_removal_is_not_cut_short_by_the_kill_after_the_grace(
    tmp_path: Path, docker_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shim removes the container once the job stopped; a docker client still busy when
    # the 2 s grace ends was SIGKILLed with the job's leftover processes (the killer spares
    # only the shim), and the container was left running.
    monkeypatch.setenv("FAKE_DOCKER_SLOW", "rm:1.6")
    task = "resources: {image_id: 'docker:python:3.12-slim'}\nrun: |\n"
    job, log = _cancel_when_ready(tmp_path, task + RUN.format(saved="saved.txt"))
    assert job["state"] == "CANCELLED", (job, log)
    assert '"rm", "-f"' in docker_on_path.read_text(), log


async def test_a_container_left_by_a_shim_killed_before_removing_it_is_removed_by_the_kill(
    tmp_path: Path, docker_on_path: Path
) -> None:
    # The shim (here a stand-in process group) died hard before it removed its container:
    # the kill that follows removes it, as the remote killer does on a VM.
    shim = await asyncio.create_subprocess_exec("sleep", "30", start_new_session=True)
    attempt = tmp_path / "attempt"
    attempt.mkdir()
    container = {"name": "skyd-1-1", "image": "python:3.12-slim"}
    (attempt / "launch.json").write_text(json.dumps({"container": container}))
    (attempt / "status.json").write_text(json.dumps({"phase": "run", "pid": shim.pid}))
    shim.kill()
    await shim.wait()
    await ProcessRunner().kill(attempt, 0.1)
    calls = [json.loads(line)["argv"] for line in docker_on_path.read_text().splitlines()]
    assert ["rm", "-f", "skyd-1-1"] in calls
