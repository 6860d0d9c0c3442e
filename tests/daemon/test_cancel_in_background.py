"""A cancel answers at once and stops the job in the background; wait=1 blocks until it ended;
a daemon killed after answering finishes the cancel when it starts again."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import ApiError, DaemonClient
from skyd.store import instances as instance_store
from skyd.store.db import open_reader
from skyd.testing.daemon import DaemonProcess, DaemonThread, settings_for_tests, wait_until
from tests.daemon_calls import ENDED, run_skyctl, wait_ended

# The job ignores the cancel's SIGTERM until the test creates $RELEASE: the kill cannot end
# before then (the grace below is far longer), so "answered while the kill goes on" is an
# ordering the test controls, not a race.
TASK = """\
name: slow-to-stop
envs:
  RELEASE: {release}
run: |
  trap 'echo got-term; while [ ! -f "$RELEASE" ]; do sleep 0.05; done; echo released; exit 0' TERM
  echo ready
  while :; do sleep 0.05; done
"""
GRACE_S = 120.0  # the kill waits for the job (it exits once released), never this long
ANSWER_S = 10.0  # a cancel that answers at once does so well within this


def _log(client: DaemonClient, job_id: int) -> str:
    return b"".join(client.job_logs(job_id, follow=False)).decode()


def _slow_job(client: DaemonClient, tmp_path: Path) -> tuple[int, Path]:
    """A RUNNING job that has started its loop; the file that lets it stop."""
    release = tmp_path / f"release-{len(list(tmp_path.glob('task-*')))}"
    task = tmp_path / f"task-{release.name}.yaml"
    task.write_text(TASK.format(release=release))
    job_id = int(client.submit_task(task.read_text(), str(tmp_path), None)["id"])
    wait_until(lambda: "ready" in _log(client, job_id), timeout=60)
    wait_until(lambda: client.get_job(job_id)["state"] == "RUNNING", timeout=30)
    return job_id, release


def _cancel(client: DaemonClient, job_id: int, wait: str) -> Any:
    """POST the cancel with a bounded client timeout (an answer that waits for the kill fails)."""
    return client.request("POST", f"/v1/jobs/{job_id}/cancel", query={"wait": wait})


def _daemon(tmp_path: Path) -> DaemonThread:
    settings = settings_for_tests(tmp_path)
    settings.local.cancel_grace_seconds = GRACE_S
    return DaemonThread(settings).start()


def test_cancel_answers_before_the_kill_is_done_then_the_job_ends_cancelled(
    tmp_path: Path,
) -> None:
    daemon = _daemon(tmp_path)
    try:
        with DaemonClient(daemon.socket_path, timeout=ANSWER_S) as client:
            job_id, release = _slow_job(client, tmp_path)
            answer = _cancel(client, job_id, "0")
            assert (answer["state"], answer["cancel_requested"]) == ("RUNNING", True)
            # the kill has reached the job, which is holding it up: still being cancelled
            wait_until(lambda: "got-term" in _log(client, job_id), timeout=30)
            shown = client.get_job(job_id)
            assert (shown["state"], shown["cancel_requested"]) == ("RUNNING", True)
            # a second cancel answers at once too, and asks nothing new
            again = _cancel(client, job_id, "0")
            assert (again["state"], again["cancel_requested"]) == ("RUNNING", True)
            code, out, err = run_skyctl(str(daemon.socket_path), "show", str(job_id))
            assert code == 0, err
            assert "RUNNING (cancelling)" in out
            code, out, err = run_skyctl(str(daemon.socket_path), "queue")
            assert code == 0 and "RUNNING (cancelling)" in out, (out, err)
            release.touch()
            job = wait_ended(client, job_id)
            events = client.get_job(job_id)["events"]
            # a cancel of the ended job: a 200 with the job as it is; nothing written
            late = [_cancel(client, job_id, wait) for wait in ("0", "1")]
            after = client.get_job(job_id)["events"]
    finally:
        assert daemon.stop() == 0
    assert job["state"] == "CANCELLED" and job["reason"].startswith("cancelled by ")
    assert job["cancel_requested"] is False  # it has ended: no cancel under way
    assert [e["kind"] for e in events].count("cancel_requested") == 1
    assert [(j["state"], j["cancel_requested"]) for j in late] == [("CANCELLED", False)] * 2
    assert after == events


def test_wait_1_answers_once_the_job_is_cancelled(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path)
    answers: list[Any] = []
    try:
        with DaemonClient(daemon.socket_path, timeout=ANSWER_S) as client:
            job_id, release = _slow_job(client, tmp_path)
            waiting = threading.Thread(
                target=lambda: answers.append(client.cancel_job(job_id, wait=True))
            )
            waiting.start()
            wait_until(lambda: "got-term" in _log(client, job_id), timeout=30)
            # the job cannot end before it is released: the waiting cancel has not answered,
            # and the job says it is being cancelled meanwhile
            with DaemonClient(daemon.socket_path, timeout=ANSWER_S) as other:
                shown = other.get_job(job_id)
            assert (shown["state"], shown["cancel_requested"]) == ("RUNNING", True)
            assert answers == [] and waiting.is_alive()
            release.touch()
            waiting.join(timeout=60)
            assert not waiting.is_alive()
    finally:
        assert daemon.stop() == 0
    [answer] = answers
    assert (answer["state"], answer["cancel_requested"]) == ("CANCELLED", False)


def test_a_bad_wait_value_is_refused_and_nothing_is_cancelled(tmp_path: Path) -> None:
    daemon = DaemonThread(settings_for_tests(tmp_path)).start()
    try:
        with DaemonClient(daemon.socket_path, timeout=ANSWER_S) as client:
            job_id = int(client.submit_task("run: sleep 300\n", str(tmp_path), None)["id"])
            wait_until(lambda: client.get_job(job_id)["state"] == "RUNNING", timeout=60)
            try:
                _cancel(client, job_id, "soon")
            except ApiError as exc:
                refused = exc
            else:
                raise AssertionError("wait=soon was accepted")
            shown = client.get_job(job_id)
            client.cancel_job(job_id, wait=True)
    finally:
        assert daemon.stop() == 0
    assert (refused.status, refused.code, refused.field) == (400, "bad_request", "wait")
    assert "'soon'" in refused.message and "1 or 0" in refused.message
    assert (shown["state"], shown["cancel_requested"]) == ("RUNNING", False)


def test_a_cancel_of_a_job_that_ended_by_itself_answers_it_unchanged(tmp_path: Path) -> None:
    daemon = DaemonThread(settings_for_tests(tmp_path)).start()
    try:
        with DaemonClient(daemon.socket_path, timeout=ANSWER_S) as client:
            job_id = int(client.submit_task("run: echo done\n", str(tmp_path), None)["id"])
            job = wait_ended(client, job_id)
            answers = [_cancel(client, job_id, wait) for wait in ("0", "1")]
            shown = client.get_job(job_id)
    finally:
        assert daemon.stop() == 0
    assert job["state"] == "SUCCEEDED"
    assert [(a["state"], a["cancel_requested"]) for a in answers] == [("SUCCEEDED", False)] * 2
    assert (shown["state"], shown["reason"]) == (job["state"], job["reason"])
    assert "cancel_requested" not in [e["kind"] for e in shown["events"]]


def test_a_job_that_exited_0_before_its_cancel_was_looked_at_ends_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run exits 0 and the daemon has not looked yet (no wake on the shim's exit, a pass
    every 30 s) when the cancel comes: the job SUCCEEDED, the cancel came too late."""
    monkeypatch.delattr(os, "pidfd_open")  # the scheduler's tick notices an end instead
    settings = settings_for_tests(tmp_path)
    settings.scheduler_tick_seconds = 30.0
    go = tmp_path / "go"
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path, timeout=ANSWER_S) as client:
            task = f"run: |\n  while [ ! -f {go} ]; do sleep 0.05; done\n  echo finished\n"
            job_id = int(client.submit_task(task, str(tmp_path), None)["id"])
            status = settings.jobs_dir / str(job_id) / "attempt-1" / "status.json"
            wait_until(lambda: status.is_file() and '"run"' in status.read_text(), timeout=60)
            go.touch()
            wait_until(lambda: '"done"' in status.read_text(), timeout=30)
            answer = client.cancel_job(job_id, wait=True)
            events = client.get_job(job_id)["events"]
    finally:
        assert daemon.stop() == 0
    assert answer["state"] == "SUCCEEDED" and answer["exit_code"] == 0, answer
    assert "the cancel asked by" in answer["reason"] and "came too late" in answer["reason"]
    assert [e["state"] for e in events if e["state"] in ENDED] == ["SUCCEEDED"]
    assert [e["kind"] for e in events].count("cancel_requested") == 1


def test_a_cancel_asked_before_a_kill_9_is_finished_by_the_restarted_daemon(
    tmp_path: Path,
) -> None:
    daemon = DaemonProcess(tmp_path)
    daemon.config.write_text(
        daemon.config.read_text().replace(
            "cancel_grace_seconds = 2.0", f"cancel_grace_seconds = {GRACE_S}"
        )
    )
    daemon.start()
    try:
        with DaemonClient(str(daemon.socket_path), timeout=ANSWER_S) as client:
            job_id, release = _slow_job(client, tmp_path)
            assert _cancel(client, job_id, "0")["cancel_requested"] is True
        # answered; the kill is under way (the job holds it up until released): die now
        daemon.kill9()

        daemon.start()
        with DaemonClient(str(daemon.socket_path), timeout=ANSWER_S) as client:
            shown = client.get_job(job_id)
            assert (shown["state"], shown["cancel_requested"]) == ("RUNNING", True)
            release.touch()
            job = wait_ended(client, job_id)
            log = _log(client, job_id)
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    assert job["state"] == "CANCELLED", job
    assert job["reason"].startswith("cancelled by "), job
    # never run again: one attempt, started once
    assert [e["state"] for e in job["events"] if e["state"]].count("RUNNING") == 1
    assert log.count("ready\n") == 1, log
    assert [p.name for p in (daemon.state_dir / "jobs" / str(job_id)).glob("attempt-*")] == [
        "attempt-1"
    ]
    reader = open_reader(daemon.state_dir / "skyd.db")
    try:
        held = instance_store.instances_for_job(reader, job_id)
    finally:
        reader.close()
    assert held and all(i.state == "TERMINATED" for i in held), held
