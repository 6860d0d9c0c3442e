"""End to end over the real socket: submit, run, logs, cancel, errors — with the local provider."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import ApiError, DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.unix_http import raw_request, request_as
from tests.daemon_calls import JsonObject

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _final_state(client: DaemonClient, job_id: int, timeout: float = 30.0) -> JsonObject:
    def done() -> JsonObject | None:
        job = client.get_job(job_id)
        return job if job["state"] in ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED") else None

    return wait_until(done, timeout=timeout)


def _submit_file(client: DaemonClient, path: Path) -> int:
    job = client.submit_task(path.read_text(), str(path.parent), None)
    return int(job["id"])


def _logs(client: DaemonClient, job_id: int) -> str:
    return b"".join(client.job_logs(job_id, follow=False)).decode()


def test_examples_run_to_success_with_their_output(client: DaemonClient) -> None:
    runnable = sorted(EXAMPLES.glob("*.yaml"))
    assert runnable, "examples/ must hold runnable tasks"
    ids = {path.name: _submit_file(client, path) for path in runnable}
    for name, job_id in ids.items():
        job = _final_state(client, job_id)
        assert job["state"] == "SUCCEEDED", (name, job, _logs(client, job_id))
        assert job["exit_code"] == 0
    assert "finished at step 10" in _logs(client, ids["checkpoint.yaml"])
    states = [e["state"] for e in client.get_job(ids["hello.yaml"])["events"] if e["state"]]
    assert states == ["PENDING", "PROVISIONING", "SETTING_UP", "RUNNING", "SUCCEEDED"]


def test_failing_setup_and_run_end_in_the_right_states(client: DaemonClient) -> None:
    bad_setup = client.submit_command(["true"], "/tmp", "x")  # placeholder to hold id order
    _final_state(client, int(bad_setup["id"]))
    setup_fail = client.submit_task("setup: exit 3\nrun: echo never\n", "/tmp", None)
    run_fail = client.submit_task("run: echo oops; exit 7\n", "/tmp", None)
    assert _final_state(client, int(setup_fail["id"]))["state"] == "FAILED_SETUP"
    failed = _final_state(client, int(run_fail["id"]))
    assert failed["state"] == "FAILED" and failed["exit_code"] == 7
    assert "never" not in _logs(client, int(setup_fail["id"]))


def test_restart_on_errors_retries_only_as_often_as_allowed(client: DaemonClient) -> None:
    task = "job_recovery:\n  max_restarts_on_errors: 2\nrun: echo attempt $SKYD_ATTEMPT; exit 1\n"
    job = _final_state(client, int(client.submit_task(task, "/tmp", None)["id"]))
    assert job["state"] == "FAILED" and job["restarts"] == 2
    assert _logs(client, int(job["id"])).count("attempt ") == 3


def test_one_line_command_job(client: DaemonClient, tmp_path: Path) -> None:
    job = client.submit_command(["sh", "-c", "echo $((6*7))"], str(tmp_path), "calc")
    assert job["name"] == "calc"
    assert _final_state(client, int(job["id"]))["state"] == "SUCCEEDED"
    assert "42" in _logs(client, int(job["id"]))


def test_cancel_kills_the_whole_process_group(client: DaemonClient, daemon: DaemonThread) -> None:
    job = client.submit_task("run: sleep 300 & sleep 300; wait\n", "/tmp", "sleeper")
    job_id = int(job["id"])
    wait_until(lambda: client.get_job(job_id)["state"] == "RUNNING")
    status_path = daemon.settings.jobs_dir / str(job_id) / "attempt-1" / "status.json"
    pgid = json.loads(status_path.read_text())["pid"]
    assert _group_members(pgid)
    cancelled = client.cancel_job(job_id, wait=True)
    assert cancelled["state"] == "CANCELLED"
    assert not _group_members(pgid)
    # cancelling again is harmless and changes nothing
    assert client.cancel_job(job_id)["state"] == "CANCELLED"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_invalid_task_is_refused_with_its_field_and_nothing_stored(client: DaemonClient) -> None:
    before, _ = client.list_jobs(include_terminal=True)
    with pytest.raises(ApiError) as err:
        client.submit_task((EXAMPLES / "invalid" / "invalid_typo.yaml").read_text(), "/tmp", None)
    assert err.value.status == 400 and err.value.code == "invalid_spec"
    assert err.value.field
    assert "did you mean" in err.value.message
    after, _ = client.list_jobs(include_terminal=True)
    assert after == before


def test_gpu_job_without_gpu_provider_is_refused_at_submit(client: DaemonClient) -> None:
    with pytest.raises(ApiError) as err:
        client.submit_task("resources:\n  accelerators: A100:8\nrun: nvidia-smi\n", "/tmp", None)
    assert err.value.status == 422 and err.value.code == "infeasible"
    assert "8×A100" in err.value.message
    assert "not enabled (enabled: local)" in err.value.message
    assert client.list_jobs(include_terminal=True)[0] == []


def test_unknown_accelerator_is_a_spec_error_with_a_suggestion(client: DaemonClient) -> None:
    with pytest.raises(ApiError) as err:
        client.submit_task("resources:\n  accelerators: A1000:1\nrun: x\n", "/tmp", None)
    assert err.value.status == 400 and err.value.field == "resources.accelerators"
    assert "A100" in err.value.message


def test_unknown_job_and_bad_ids_and_broken_json(
    client: DaemonClient, daemon: DaemonThread
) -> None:
    with pytest.raises(ApiError) as err:
        client.get_job(999)
    assert err.value.status == 404 and err.value.code == "not_found"
    raw = _raw_request(daemon.socket_path, b"POST", b"/v1/jobs", b"{not json")
    assert raw[0] == 400 and raw[1]["code"] == "bad_request"
    raw = _raw_request(daemon.socket_path, b"GET", b"/v1/jobs/abc", b"")
    assert raw[0] == 400 and "number" in raw[1]["message"]
    raw = _raw_request(daemon.socket_path, b"GET", b"/v1/jobs?state=NOPE", b"")
    assert raw[0] == 400 and "PENDING" in raw[1]["message"]
    assert client.list_jobs(include_terminal=True)[0] == []


def _raw_request(path: str, method: bytes, target: bytes, body: bytes) -> tuple[int, Any]:
    status, answer, _kind = raw_request(
        path, method.decode(), target.decode(), body, "application/json"
    )
    return status, answer


def _as_user(uid: int, socket_path: str, method: bytes, target: bytes) -> tuple[int, Any]:
    """One request from a forked child running as `uid` (SO_PEERCRED sees that uid)."""
    return request_as(uid, socket_path, method.decode(), target.decode())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_only_the_owner_or_root_may_cancel(tmp_path: Path) -> None:
    # the other user must reach the socket: put it in a directory it can traverse
    public = Path(tempfile.mkdtemp(prefix="skyd-test-"))
    public.chmod(0o755)
    settings = settings_for_tests(tmp_path, socket_path=public / "skyd.sock", socket_mode=0o666)
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            _owner_check(client, daemon)
    finally:
        assert daemon.stop() == 0
        shutil.rmtree(public, ignore_errors=True)


def _owner_check(client: DaemonClient, daemon: DaemonThread) -> None:
    job = client.submit_task("run: sleep 60\n", "/tmp", "roots")
    job_id = int(job["id"])
    status, body = _as_user(
        65534, daemon.socket_path, b"POST", f"/v1/jobs/{job_id}/cancel".encode()
    )
    assert status == 403 and body["code"] == "permission_denied"
    assert "owner" in body["message"]
    assert client.get_job(job_id)["state"] != "CANCELLED"
    status, _body = _as_user(65534, daemon.socket_path, b"GET", f"/v1/jobs/{job_id}/logs".encode())
    assert status == 403
    assert client.cancel_job(job_id, wait=True)["state"] == "CANCELLED"


def test_follow_logs_streams_until_the_job_ends(client: DaemonClient) -> None:
    job = client.submit_task(
        "run: for i in 1 2 3; do echo line $i; sleep 0.2; done\n", "/tmp", None
    )
    text = b"".join(client.job_logs(int(job["id"]), follow=True)).decode()
    assert "line 1" in text and "line 3" in text and "exited with code 0" in text
    assert client.get_job(int(job["id"]))["state"] == "SUCCEEDED"


def test_event_stream_replays_then_follows(client: DaemonClient) -> None:
    job = client.submit_task("run: echo hi\n", "/tmp", None)
    _final_state(client, int(job["id"]))
    seen: list[str] = []
    for event in client.events(since=0):
        if event.get("job_id") == job["id"] and event.get("state"):
            seen.append(str(event["state"]))
        if seen and seen[-1] == "SUCCEEDED":
            break
    assert seen == ["PENDING", "PROVISIONING", "SETTING_UP", "RUNNING", "SUCCEEDED"]


def test_queue_filters_and_openapi(client: DaemonClient) -> None:
    job = client.submit_task("run: sleep 30\n", "/tmp", "q")
    active, _ = client.list_jobs()
    assert [j["id"] for j in active] == [job["id"]]
    assert client.list_jobs(states=["SUCCEEDED"])[0] == []
    assert client.list_jobs(user="root")[0][0]["owner"] == "root"
    doc = client.request("GET", "/v1/openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/jobs", "/v1/jobs/{job_id}/logs", "/v1/events"} <= set(doc["paths"])
    assert "JobView" in doc["components"]["schemas"]
    client.cancel_job(int(job["id"]))
