"""`skyd run` logs plain lines to a person's terminal and JSON lines under systemd or a pipe."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import wait_until


def _skyd_run(state_dir: Path, socket_path: Path, config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "skyd",
        "run",
        "--state-dir",
        str(state_dir),
        "--socket",
        str(socket_path),
        "--config",
        str(config),
    ]


def _run_on_a_terminal(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """Start `skyd run` with a pseudo-terminal as stderr, stop it with SIGTERM, return its lines."""
    socket_path = tmp_path / "skyd.sock"
    config = tmp_path / "skyd.toml"
    config.write_text(
        "scheduler_tick_seconds = 0.1\nshutdown_budget_seconds = 5.0\n"
        "[local]\ngpus = 0\ncancel_grace_seconds = 2.0\n"
    )
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        _skyd_run(tmp_path / "state", socket_path, config),
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, **env},
    )
    os.close(secondary)
    chunks: list[bytes] = []
    # a terminal's buffer is small: read while the daemon writes, or it blocks on its log
    reader = threading.Thread(target=_drain, args=(primary, chunks), daemon=True)
    reader.start()
    try:
        wait_until(lambda: b"skyd ready" in b"".join(chunks) or proc.poll() is not None, timeout=60)
        # once it answers, its services run (a SIGTERM a moment after "ready" is not what
        # this test is about)
        with DaemonClient(str(socket_path)) as client:
            client.health()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(10)
    os.close(primary)
    text = b"".join(chunks).decode()
    return [line for line in text.splitlines() if line.strip()]


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed and drained
            return
        if not chunk:
            return
        chunks.append(chunk)


def test_a_terminal_gets_human_lines(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
    lines = _run_on_a_terminal(tmp_path, {**env, "JOURNAL_STREAM": ""})
    stopped = [line for line in lines if "skyd stopped" in line]
    assert stopped, lines
    assert not stopped[0].lstrip().startswith("{")
    assert " INFO " in stopped[0] and "skyd" in stopped[0]


def test_under_systemd_the_journal_gets_json_even_on_a_terminal(tmp_path: Path) -> None:
    lines = _run_on_a_terminal(tmp_path, {"JOURNAL_STREAM": "8:12345"})
    records = [json.loads(line) for line in lines]
    assert any(record["msg"] == "skyd stopped" for record in records), lines
    assert all(record["level"] for record in records)


def test_an_unknown_log_format_is_refused_with_the_choices(tmp_path: Path) -> None:
    config = tmp_path / "skyd.toml"
    config.write_text('log_format = "xml"\n')
    proc = subprocess.run(
        _skyd_run(tmp_path / "state", tmp_path / "s.sock", config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "log_format" in proc.stderr and "'xml'" in proc.stderr and "auto" in proc.stderr


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_an_explicit_format_wins(fmt: str) -> None:
    from skyd.logfmt import resolve_format

    assert resolve_format(fmt, sys.stderr, {"JOURNAL_STREAM": "1:2"}) == fmt
