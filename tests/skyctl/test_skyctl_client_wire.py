"""The client's wire format over the Unix socket, checked by a scripted HTTP responder."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skyctl.client import (
    ApiError,
    DaemonClient,
    DaemonUnavailableError,
    build_target,
    split_lines,
)
from skyctl.testing import CannedResponse, RecordedRequest, ScriptedResponder

JOB = {"id": 7, "name": "train", "state": "PENDING", "owner": "alice"}


def test_submit_task_posts_the_documented_json_body(responder: ScriptedResponder) -> None:
    responder.on("POST", "/v1/jobs", CannedResponse.json(JOB, status=201))
    with DaemonClient(responder.socket_path) as client:
        job = client.submit_task("run: echo hi\n", "/home/alice/proj", None, source="t.yaml")
    assert job == JOB
    [request] = responder.requests
    assert request.method == "POST"
    assert request.path == "/v1/jobs"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["host"] == "localhost"
    assert request.headers["user-agent"].startswith("skyctl/")
    assert int(request.headers["content-length"]) == len(request.body)
    assert request.json() == {
        "task_yaml": "run: echo hi\n",
        "base_dir": "/home/alice/proj",
        "name": None,
        "source": "t.yaml",
    }


def test_submit_command_sends_the_argv_list(responder: ScriptedResponder) -> None:
    responder.on("POST", "/v1/jobs", CannedResponse.json(JOB, status=201))
    with DaemonClient(responder.socket_path) as client:
        client.submit_command(["python", "-c", "print('a b')"], "/work", "quick")
    assert responder.requests[0].json() == {
        "command": ["python", "-c", "print('a b')"],
        "base_dir": "/work",
        "name": "quick",
    }


def test_requests_share_one_keep_alive_connection(responder: ScriptedResponder) -> None:
    responder.on("GET", "/v1/health", CannedResponse.json({"ok": True}))
    with DaemonClient(responder.socket_path) as client:
        for _ in range(3):
            client.health()
    with DaemonClient(responder.socket_path) as client:
        client.health()
    assert [request.connection for request in responder.requests] == [1, 1, 1, 2]


def test_list_jobs_query_string(responder: ScriptedResponder) -> None:
    page = {"jobs": [JOB], "next_cursor": 41}
    responder.on("GET", "/v1/jobs", CannedResponse.json(page))
    with DaemonClient(responder.socket_path) as client:
        jobs, cursor = client.list_jobs(
            states=["RUNNING", "PENDING"], user="alice", include_terminal=True, limit=50
        )
        client.list_jobs()
    assert (jobs, cursor) == ([JOB], "41")
    first, second = responder.requests
    assert first.query == {
        "state": ["RUNNING,PENDING"],
        "user": ["alice"],
        "all": ["1"],
        "limit": ["50"],
    }
    assert second.query == {}


def test_build_target_drops_unset_values_and_encodes_the_rest() -> None:
    assert build_target("/v1/x", None) == "/v1/x"
    assert build_target("/v1/x", {"a": None}) == "/v1/x"
    assert build_target("/v1/x", {"spot": False, "q": "a b&c"}) == "/v1/x?spot=0&q=a+b%26c"


def test_structured_error_keeps_code_message_field_and_status(
    responder: ScriptedResponder,
) -> None:
    responder.on(
        "POST",
        "/v1/jobs",
        CannedResponse.error(400, "invalid_spec", "unknown field 'acclerators'", "resources"),
    )
    with DaemonClient(responder.socket_path) as client, pytest.raises(ApiError) as caught:
        client.submit_task("resources: {acclerators: V100}\n", "/", None)
    error = caught.value
    assert (error.code, error.message, error.field, error.status, error.structured) == (
        "invalid_spec",
        "unknown field 'acclerators'",
        "resources",
        400,
        True,
    )


def test_framework_404_is_an_unstructured_error(responder: ScriptedResponder) -> None:
    with DaemonClient(responder.socket_path) as client, pytest.raises(ApiError) as caught:
        client.request("GET", "/v1/credits")
    assert caught.value.status == 404
    assert not caught.value.structured
    assert caught.value.message == "404: Not Found"


def test_non_json_success_is_reported_not_crashed_on(responder: ScriptedResponder) -> None:
    responder.on("GET", "/v1/health", CannedResponse(200, b"<html>", "text/html"))
    with DaemonClient(responder.socket_path) as client, pytest.raises(ApiError) as caught:
        client.health()
    assert caught.value.code == "bad_response"


def test_missing_socket_is_daemon_unavailable(socket_dir: Path) -> None:
    path = str(socket_dir / "absent.sock")
    with DaemonClient(path) as client, pytest.raises(DaemonUnavailableError) as caught:
        client.health()
    assert caught.value.socket_path == path
    assert caught.value.reason == "no such socket"


def test_stale_socket_file_is_daemon_unavailable(socket_dir: Path) -> None:
    path = str(socket_dir / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)  # bound, never listening, then closed: what a crashed daemon leaves
    with DaemonClient(path) as client, pytest.raises(DaemonUnavailableError) as caught:
        client.list_jobs()
    assert "refused" in caught.value.reason


def test_log_stream_is_delivered_chunk_by_chunk(responder: ScriptedResponder) -> None:
    second_chunk_allowed = threading.Event()

    def log_chunks() -> Iterator[bytes]:
        yield b"line 1\n"
        # The second chunk exists only after the client has seen the first one: a client that
        # waited for the whole body would get both at once and fail the first assertion.
        second_chunk_allowed.wait(timeout=10)
        yield b"line 2\n\xff"

    responder.on("GET", "/v1/jobs/7/logs", lambda _: CannedResponse.streamed(log_chunks()))
    with DaemonClient(responder.socket_path) as client:
        chunks = client.job_logs(7, follow=True)
        assert next(chunks) == b"line 1\n"
        second_chunk_allowed.set()
        assert list(chunks) == [b"line 2\n\xff"]
    [request] = responder.requests
    assert request.query == {"follow": ["1"]}


def test_stream_errors_are_raised_before_iteration(responder: ScriptedResponder) -> None:
    responder.on("GET", "/v1/jobs/99/logs", CannedResponse.error(404, "not_found", "no job 99"))
    with DaemonClient(responder.socket_path) as client, pytest.raises(ApiError) as caught:
        client.job_logs(99, follow=False)
    assert caught.value.message == "no job 99"


def test_event_stream_yields_decoded_lines_across_chunk_boundaries(
    responder: ScriptedResponder,
) -> None:
    lines = [{"seq": 5, "kind": "submitted"}, {"kind": "heartbeat"}, {"seq": 6, "kind": "state"}]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    pieces = [body[:7], body[7:40], body[40:]]

    def answer(request: RecordedRequest) -> CannedResponse:
        return CannedResponse.streamed(iter(pieces), "application/x-ndjson")

    responder.on("GET", "/v1/events", answer)
    with DaemonClient(responder.socket_path) as client:
        assert list(client.events(since=4)) == lines
    assert responder.requests[0].query == {"since": ["4"]}


def test_split_lines_keeps_a_partial_tail() -> None:
    assert list(split_lines(iter([b"a\nb", b"c\n", b"", b"tail"]))) == [b"a", b"bc", b"tail"]


def test_a_cancel_waits_past_the_client_timeout_for_the_daemon_to_answer(
    responder: ScriptedResponder,
) -> None:
    # With wait=1 the daemon answers a cancel once the job has stopped and its buckets are
    # written back (it bounds that itself); a plain request as slow times out.
    never = threading.Event()

    def slow(answer: CannedResponse) -> Callable[[RecordedRequest], CannedResponse]:
        def respond(_: RecordedRequest) -> CannedResponse:
            never.wait(0.6)  # longer than the client's timeout below
            return answer

        return respond

    cancelled = {**JOB, "state": "CANCELLED"}
    responder.on("POST", "/v1/jobs/7/cancel", slow(CannedResponse.json(cancelled)))
    responder.on("GET", "/v1/jobs/7", slow(CannedResponse.json(JOB)))
    responder.on("GET", "/v1/health", CannedResponse.json({"ok": True}))
    with DaemonClient(responder.socket_path, timeout=0.2) as client:
        assert client.cancel_job(7, wait=True) == cancelled
        # the shared connection is untouched by the cancel's own
        assert client.request("GET", "/v1/health") == {"ok": True}
        with pytest.raises(DaemonUnavailableError):
            client.request("GET", "/v1/jobs/7")
    assert responder.requests[0].query == {"wait": ["1"]}


def test_a_cancel_asks_for_an_answer_at_once_unless_told_to_wait(
    responder: ScriptedResponder,
) -> None:
    responder.on(
        "POST", "/v1/jobs/7/cancel", CannedResponse.json({**JOB, "cancel_requested": True})
    )
    with DaemonClient(responder.socket_path) as client:
        assert client.cancel_job(7)["cancel_requested"] is True
        client.cancel_job(7, wait=True)
    assert [r.query for r in responder.requests] == [{"wait": ["0"]}, {"wait": ["1"]}]
