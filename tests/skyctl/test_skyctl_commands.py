"""skyctl commands end to end in-process: argv in, requests on the wire, output and exit status."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from skyctl.__main__ import main, split_command_argv
from skyctl.testing import CannedResponse, RecordedRequest, ScriptedResponder


def _job(job_id: int, state: str = "PENDING", **fields: Any) -> dict[str, Any]:
    job = {"id": job_id, "name": f"job{job_id}", "state": state, "owner": "alice"}
    job.update(fields)
    return job


def _run(responder: ScriptedResponder, *argv: str) -> int:
    return main(["--socket", responder.socket_path, *argv])


@pytest.fixture
def task_files(tmp_path: Path) -> list[Path]:
    paths = []
    for name in ("a", "b", "c"):
        path = tmp_path / "tasks" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"name: {name}\nrun: echo {name}\n")
        paths.append(path)
    return paths


def _numbered_jobs() -> Any:
    counter = iter(range(1, 100))

    def answer(request: RecordedRequest) -> CannedResponse:
        return CannedResponse.json(_job(next(counter)), status=201)

    return answer


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "head", "command"),
    [
        (["submit", "a.yaml"], ["submit", "a.yaml"], None),
        (["submit", "--name", "x", "--", "ls", "-l"], ["submit", "--name", "x"], ["ls", "-l"]),
        (
            ["--socket", "s", "submit", "--", "a", "--", "b"],
            ["--socket", "s", "submit"],
            ["a", "--", "b"],
        ),
        (["cancel", "--", "12"], ["cancel", "--", "12"], None),
        (
            ["--socket", "submit", "queue", "--", "x"],
            ["--socket", "submit", "queue", "--", "x"],
            None,
        ),
    ],
)
def test_split_command_argv(argv: list[str], head: list[str], command: list[str] | None) -> None:
    assert split_command_argv(argv) == (head, command)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "abc"], "job ids are positive numbers like 12, not 'abc'"),
        (["cancel", "0"], "not '0'"),
        (["queue", "--limit", "0"], "expected a number from 1 to 100000"),
        (["submit"], "give task files, or -- and a command to run"),
        (["submit", "a.yaml", "--", "ls"], "give either task files or -- COMMAND, not both"),
        (["submit", "--"], "nothing after --"),
        ([], "give a command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--socket", "/nonexistent/skyd.sock", *argv]) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in (
        "submit",
        "queue",
        "show",
        "logs",
        "cancel",
        "prices",
        "optimize",
        "credits",
        "costs",
        "clusters",
        "dashboard",
        "version",
    ):
        assert f"    {command}" in out


def test_socket_may_follow_the_command(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("GET", "/v1/jobs/3", CannedResponse.json(_job(3)))
    assert (
        main(["--socket", "/wrong", "show", "3", "--json", "--socket", responder.socket_path]) == 0
    )
    assert json.loads(capsys.readouterr().out)["id"] == 3


# -- submit --------------------------------------------------------------------------------


def test_submit_one_file_prints_its_id(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("POST", "/v1/jobs", CannedResponse.json(_job(41), status=201))
    assert _run(responder, "submit", str(task_files[0])) == 0
    assert capsys.readouterr().out == "41\n"
    body = responder.requests[0].json()
    assert body == {
        "task_yaml": "name: a\nrun: echo a\n",
        # relative paths resolve against the working directory, as in SkyPilot
        "base_dir": os.getcwd(),
        "name": None,
        "source": str(task_files[0]),
    }


def test_submit_json_is_an_object_for_one_file_and_a_list_for_several(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("POST", "/v1/jobs", _numbered_jobs())
    assert _run(responder, "submit", "--json", str(task_files[0])) == 0
    assert json.loads(capsys.readouterr().out)["id"] == 1
    assert _run(responder, "submit", "--json", "--name", "n", *map(str, task_files[1:])) == 0
    assert [job["id"] for job in json.loads(capsys.readouterr().out)] == [2, 3]
    assert [request.json()["name"] for request in responder.requests] == [None, "n", "n"]


def test_submit_several_continues_past_a_rejected_file_and_exits_1(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(request: RecordedRequest) -> CannedResponse:
        if "name: b" in request.json()["task_yaml"]:
            return CannedResponse.error(400, "invalid_spec", "run: must not be empty", "run")
        return CannedResponse.json(_job(len(responder.requests)), status=201)

    responder.on("POST", "/v1/jobs", answer)
    assert _run(responder, "submit", *map(str, task_files)) == 1
    captured = capsys.readouterr()
    assert captured.out == "1\n3\n"
    assert captured.err == f"skyctl: error: {task_files[1]}: run: must not be empty\n"


def test_spec_errors_that_name_the_file_are_not_prefixed_twice(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(task_files[0])
    message = f"{path}:2: resources.accelerators: unknown accelerator 'V1OO' (did you mean V100?)"
    responder.on("POST", "/v1/jobs", CannedResponse.error(400, "invalid_spec", message))
    assert _run(responder, "submit", path) == 1
    assert capsys.readouterr().err == f"skyctl: error: {message}\n"


def test_submit_from_stdin(
    responder: ScriptedResponder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("run: echo piped\n"))
    responder.on("POST", "/v1/jobs", CannedResponse.json(_job(8), status=201))
    assert _run(responder, "submit", "-") == 0
    assert capsys.readouterr().out == "8\n"
    body = responder.requests[0].json()
    assert (body["task_yaml"], body["base_dir"], body["source"]) == (
        "run: echo piped\n",
        str(tmp_path),
        "<stdin>",
    )


def test_submit_with_a_missing_file_submits_nothing(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("POST", "/v1/jobs", _numbered_jobs())
    missing = str(task_files[0].parent / "nope.yaml")
    assert _run(responder, "submit", str(task_files[0]), missing) == 2
    assert "task file" in capsys.readouterr().err
    assert responder.requests == []


def test_submit_command_sends_argv_and_cwd(
    responder: ScriptedResponder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    responder.on("POST", "/v1/jobs", CannedResponse.json(_job(5), status=201))
    assert _run(responder, "submit", "--name", "q", "--", "python", "-c", "print(1)") == 0
    assert capsys.readouterr().out == "5\n"
    assert responder.requests[0].json() == {
        "command": ["python", "-c", "print(1)"],
        "base_dir": str(tmp_path),
        "name": "q",
    }


def test_daemon_error_is_printed_with_its_field_and_exits_1(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on(
        "POST",
        "/v1/jobs",
        CannedResponse.error(422, "infeasible", "no enabled provider offers GPUs", "resources"),
    )
    assert _run(responder, "submit", str(task_files[0])) == 1
    assert capsys.readouterr().err == (
        f"skyctl: error: {task_files[0]}: no enabled provider offers GPUs (field: resources)\n"
    )


# -- queue, show, cancel, logs ---------------------------------------------------------------


def test_queue_json_lists_jobs_and_follows_cursors_up_to_the_limit(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(request: RecordedRequest) -> CannedResponse:
        if "cursor" not in request.query:
            return CannedResponse.json({"jobs": [_job(9), _job(8)], "next_cursor": "c8"})
        return CannedResponse.json({"jobs": [_job(7)], "next_cursor": "c7"})

    responder.on("GET", "/v1/jobs", answer)
    assert _run(responder, "queue", "--json", "--limit", "3", "--user", "alice") == 0
    assert [job["id"] for job in json.loads(capsys.readouterr().out)] == [9, 8, 7]
    first, second = responder.requests
    assert first.query == {"user": ["alice"], "limit": ["3"]}
    assert second.query == {"user": ["alice"], "limit": ["1"], "cursor": ["c8"]}


def test_queue_state_filter_includes_terminal_jobs(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("GET", "/v1/jobs", CannedResponse.json({"jobs": [], "next_cursor": None}))
    assert _run(responder, "queue", "--state", "succeeded,failed", "--state", "RUNNING") == 0
    assert capsys.readouterr().out == "No jobs.\n"
    assert responder.requests[0].query["state"] == ["SUCCEEDED,FAILED,RUNNING"]
    assert responder.requests[0].query["all"] == ["1"]


def test_queue_table_has_the_documented_columns(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    page = {"jobs": [_job(2, "RUNNING", created_at=0.0, started_at=1.0)], "next_cursor": "x"}
    responder.on("GET", "/v1/jobs", CannedResponse.json(page))
    assert _run(responder, "queue", "--limit", "1") == 0
    captured = capsys.readouterr()
    header, row = captured.out.splitlines()
    assert header.split() == [
        "ID",
        "NAME",
        "USER",
        "STATE",
        "PLACEMENT",
        "SUBMITTED",
        "RUN",
        "TIME",
    ]
    assert row.split()[:5] == ["2", "job2", "alice", "RUNNING", "-"]
    assert "use --limit" in captured.err


def test_show_json_and_human(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(4, "SUCCEEDED", created_at=0.0, events=[])
    responder.on("GET", "/v1/jobs/4", CannedResponse.json(job))
    assert _run(responder, "show", "4", "--json") == 0
    assert json.loads(capsys.readouterr().out) == job
    assert _run(responder, "show", "4") == 0
    assert capsys.readouterr().out.startswith("Job 4: job4\n  state        SUCCEEDED\n")


def test_show_unknown_job(responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]) -> None:
    responder.on("GET", "/v1/jobs/8", CannedResponse.error(404, "not_found", "no job 8"))
    assert _run(responder, "show", "8") == 1
    assert capsys.readouterr().err == "skyctl: error: no job 8\n"


def test_cancel_reports_each_job_and_fails_if_any_failed(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("POST", "/v1/jobs/3/cancel", CannedResponse.json(_job(3, "CANCELLED")))
    responder.on(
        "POST",
        "/v1/jobs/4/cancel",
        CannedResponse.error(403, "permission_denied", "job 4 belongs to bob"),
    )
    assert _run(responder, "cancel", "3", "4") == 1
    captured = capsys.readouterr()
    assert captured.out == "job 3: CANCELLED\n"
    assert captured.err == "skyctl: error: job 4: job 4 belongs to bob\n"
    assert _run(responder, "cancel", "3", "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "CANCELLED"


def test_cancel_returns_at_once_and_says_how_to_follow_the_cancel(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    # the daemon's answer to wait=0: the job as it is, its cancel under way
    stopping = _job(12, "RUNNING", cancel_requested=True)
    responder.on("POST", "/v1/jobs/12/cancel", CannedResponse.json(stopping))
    assert _run(responder, "cancel", "12") == 0
    assert responder.requests[-1].query == {"wait": ["0"]}
    assert capsys.readouterr().out == (
        "job 12: RUNNING (cancelling)\n"
        "cancel under way: the daemon is stopping job 12; follow it with `skyctl show 12` or"
        " `skyctl status` (--wait to wait for it)\n"
    )


def test_cancel_wait_asks_the_daemon_to_answer_once_the_job_is_cancelled(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on("POST", "/v1/jobs/12/cancel", CannedResponse.json(_job(12, "CANCELLED")))
    assert _run(responder, "cancel", "--wait", "12") == 0
    assert responder.requests[-1].query == {"wait": ["1"]}
    assert capsys.readouterr().out == "job 12: CANCELLED\n"


def test_queue_and_show_say_a_job_is_being_cancelled(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    stopping = _job(12, "RUNNING", cancel_requested=True, created_at=1.0, events=[])
    page = {"jobs": [stopping, _job(13, "RUNNING", created_at=1.0)], "next_cursor": None}
    responder.on("GET", "/v1/jobs", CannedResponse.json(page))
    responder.on("GET", "/v1/jobs/12", CannedResponse.json(stopping))
    assert _run(responder, "queue") == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "RUNNING (cancelling)" in rows["12"]
    assert "cancelling" not in rows["13"]
    assert _run(responder, "show", "12") == 0
    assert "  state        RUNNING (cancelling)\n" in capsys.readouterr().out


def test_logs_are_copied_byte_for_byte(
    responder: ScriptedResponder, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    responder.on(
        "GET", "/v1/jobs/6/logs", CannedResponse.streamed(iter([b"epoch 1\n", b"\xffraw\n"]))
    )
    assert _run(responder, "logs", "6", "-f") == 0
    assert capfdbinary.readouterr().out == b"epoch 1\n\xffraw\n"
    assert responder.requests[0].query == {"follow": ["1"]}


# -- daemon absent, version, reserved commands ---------------------------------------------------


def test_no_daemon_names_the_socket_and_how_to_start_it_exit_3(
    socket_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(socket_dir / "skyd.sock")
    assert main(["--socket", path, "queue"]) == 3
    err = capsys.readouterr().err
    assert path in err
    assert "skyd run" in err
    assert "systemctl start skyd" in err


def test_version_works_without_a_daemon(
    socket_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--socket", str(socket_dir / "none.sock"), "version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("skyctl  ")
    assert "not reachable" in out


def test_version_shows_the_daemon(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    health = {"ok": True, "version": "9.9", "providers": ["local", "sim"], "pid": 4242}
    responder.on("GET", "/v1/health", CannedResponse.json(health))
    assert _run(responder, "version") == 0
    assert "skyd    9.9 (pid 4242, providers: local, sim)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["prices", "--gpu", "A100"], "prices"),
        (["credits"], "credits"),
        (["costs", "--by", "project"], "costs"),
        (["clusters"], "clusters"),
    ],
)
def test_reserved_commands_on_an_older_daemon_say_it_is_unsupported(
    responder: ScriptedResponder,
    argv: list[str],
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(responder, *argv) == 1
    assert f"this daemon does not support {name} yet" in capsys.readouterr().err


def test_optimize_unsupported(
    responder: ScriptedResponder, task_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(responder, "optimize", str(task_files[0])) == 1
    assert "this daemon does not support optimize yet" in capsys.readouterr().err
    assert responder.requests[0].json()["task_yaml"] == "name: a\nrun: echo a\n"


def test_prices_query_and_table(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    offers = {"prices": [{"gpu": "A100", "cloud": "gcp", "hourly_price": 1.1}]}
    responder.on("GET", "/v1/prices", CannedResponse.json(offers))
    assert (
        _run(responder, "prices", "--gpu", "A100", "--cloud", "gcp", "--spot", "--all-regions") == 0
    )
    assert capsys.readouterr().out == "Prices\nGPU   CLOUD  HOURLY PRICE\nA100  gcp    $1.10\n"
    assert responder.requests[0].query == {
        "gpu": ["A100"],
        "cloud": ["gcp"],
        "spot": ["1"],
        "all_regions": ["1"],
    }
    assert _run(responder, "prices", "--on-demand", "--json") == 0
    assert json.loads(capsys.readouterr().out) == offers
    assert responder.requests[1].query == {"spot": ["0"]}


def test_price_history_of_an_unknown_offering_is_not_called_unsupported(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    responder.on(
        "GET",
        "/v1/prices/history",
        CannedResponse.error(404, "not_found", "no offering aws/x/y/z", "offering"),
    )
    assert _run(responder, "prices", "--history", "aws/x/y/z") == 1
    # The message already names the field, so it is not repeated.
    assert capsys.readouterr().err == "skyctl: error: no offering aws/x/y/z\n"
    assert responder.requests[0].query == {"offering": ["aws/x/y/z"]}


def test_price_history_route_missing_behind_a_json_error_middleware(
    responder: ScriptedResponder, capsys: pytest.CaptureFixture[str]
) -> None:
    # skyd wraps aiohttp's own 404 as {"code": "not_found", "message": "Not Found"}.
    responder.on("GET", "/v1/prices/history", CannedResponse.error(404, "not_found", "Not Found"))
    assert _run(responder, "prices", "--history", "aws/x/y/z") == 1
    assert "this daemon does not support prices --history yet" in capsys.readouterr().err


def test_command_help_is_complete_when_only_that_command_is_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["queue", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--all", "--user U", "--state S", "--limit N", "--json"):
        assert option in out
