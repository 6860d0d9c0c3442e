"""skyctl as a separate process: what it imports, and how it exits on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from skyctl.testing import CannedResponse, ScriptedResponder

# Heavy or daemon-side modules (and typing) that the fast paths must never load.
FORBIDDEN = (
    "aiohttp",
    "yaml",
    "pydantic",
    "rich",
    "textual",
    "ortools",
    "skyd",
    "skyctl.testing",
    "typing",  # ~3 ms of startup, see skyctl/client.py
)

_PROBE = """
import json, sys
from skyctl.__main__ import main
code = main(sys.argv[1:])
loaded = sorted(
    name for name in sys.modules
    if any(name == bad or name.startswith(bad + ".") for bad in json.loads({forbidden!r}))
)
print(json.dumps({{"code": code, "loaded": loaded}}), file=sys.stderr)
"""


def _probe(*argv: str) -> dict[str, object]:
    script = _PROBE.format(forbidden=json.dumps(FORBIDDEN))
    result = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60
    )
    report: dict[str, object] = json.loads(result.stderr.strip().splitlines()[-1])
    return report


def test_fast_paths_import_nothing_heavy(responder: ScriptedResponder, tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text("run: echo hi\n")
    responder.on("POST", "/v1/jobs", CannedResponse.json({"id": 1}, status=201))
    responder.on("GET", "/v1/jobs", CannedResponse.json({"jobs": [], "next_cursor": None}))
    job = {"id": 1, "name": "x", "state": "RUNNING", "owner": "a", "events": []}
    responder.on("GET", "/v1/jobs/1", CannedResponse.json(job))
    responder.on("POST", "/v1/jobs/1/cancel", CannedResponse.json(job))
    responder.on("GET", "/v1/jobs/1/logs", CannedResponse.streamed(iter([b"hi\n"])))
    for argv in (
        ["submit", str(task)],
        ["submit", "--", "echo", "hi"],
        ["queue", "--all"],
        ["show", "1"],
        ["logs", "1"],
        ["cancel", "1"],
    ):
        report = _probe("--socket", responder.socket_path, *argv)
        assert report == {"code": 0, "loaded": []}, argv


def test_ctrl_c_while_following_logs_exits_130_without_a_traceback(
    responder: ScriptedResponder,
) -> None:
    job_finished = threading.Event()

    def endless_log() -> Iterator[bytes]:
        yield b"step 1\n"
        job_finished.wait(timeout=60)

    responder.on("GET", "/v1/jobs/3/logs", lambda _: CannedResponse.streamed(endless_log()))
    process = subprocess.Popen(
        [sys.executable, "-m", "skyctl", "--socket", responder.socket_path, "logs", "3", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        # Interrupt only once skyctl is demonstrably inside the stream.
        assert process.stdout.readline() == b"step 1\n"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        job_finished.set()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert b"Traceback" not in stderr


def test_closed_pipe_ends_quietly(responder: ScriptedResponder) -> None:
    many_lines = [b"line %d\n" % n for n in range(50000)]
    responder.on("GET", "/v1/jobs/2/logs", CannedResponse.streamed(iter(many_lines)))
    process = subprocess.Popen(
        [sys.executable, "-m", "skyctl", "--socket", responder.socket_path, "logs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    # Like `skyctl logs 2 | head -n 1`: the reader goes away while far more is still coming.
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 1
    assert stderr == b""
