"""`skyd run` as a real process: kill -9 and restart, graceful SIGTERM, sd_notify, one writer."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonProcess, wait_until

TASK = """\
name: survivor
run: |
  echo started
  # hold until the test opens the gate, so the kill always lands mid-run
  while [ ! -f "$GATE" ]; do sleep 0.05; done
  for i in $(seq 1 15); do echo tick $i; done
  echo all done
"""


def test_kill_9_mid_run_then_restart_finishes_the_job_once(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    task = TASK.replace("name: survivor", f"name: survivor\nenvs:\n  GATE: {gate}")
    daemon = DaemonProcess(tmp_path).start()
    try:
        _kill_and_recover(daemon, task, gate, tmp_path)
    finally:
        daemon.close()


def _kill_and_recover(daemon: DaemonProcess, task: str, gate: Path, tmp_path: Path) -> None:
    with DaemonClient(str(daemon.socket_path)) as client:
        job_id = int(client.submit_task(task, str(tmp_path), None)["id"])
        wait_until(lambda: client.get_job(job_id)["state"] == "RUNNING")
    daemon.kill9()

    daemon.start()
    with DaemonClient(str(daemon.socket_path)) as client:
        assert client.get_job(job_id)["state"] == "RUNNING"  # picked up, not restarted
        gate.touch()
        wait_until(lambda: client.get_job(job_id)["state"] == "SUCCEEDED", timeout=30)
        log = b"".join(client.job_logs(job_id, follow=False)).decode()
        job = client.get_job(job_id)
    assert log.count("started\n") == 1, log  # never started twice
    assert "tick 15" in log and "all done" in log
    assert [e["state"] for e in job["events"] if e["state"]].count("RUNNING") == 1
    assert sorted(p.name for p in (daemon.state_dir / "jobs" / str(job_id)).glob("attempt-*")) == [
        "attempt-1"
    ]
    assert daemon.terminate() == 0


def test_sigterm_is_graceful_and_systemd_is_notified(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    daemon = DaemonProcess(tmp_path, env={"NOTIFY_SOCKET": str(notify_path)}).start()
    try:
        assert listener.recv(1024) == b"READY=1"
        assert daemon.terminate() == 0
    finally:
        daemon.close()
    assert listener.recv(1024) == b"STOPPING=1"
    listener.close()
    assert not daemon.socket_path.exists()  # the socket is removed on a clean stop
    assert '"skyd stopped"' in daemon.log_path.read_text()  # structured (JSON) log lines


def test_a_second_daemon_on_the_same_state_or_socket_is_refused(tmp_path: Path) -> None:
    first = DaemonProcess(tmp_path).start()
    try:
        _second_refused(first, tmp_path)
    finally:
        first.close()


def _second_refused(first: DaemonProcess, tmp_path: Path) -> None:
    same_socket = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyd",
            "run",
            "--state-dir",
            str(tmp_path / "other"),
            "--socket",
            str(first.socket_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert same_socket.returncode == 1
    assert "another skyd" in same_socket.stderr
    same_state = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyd",
            "run",
            "--state-dir",
            str(first.state_dir),
            "--socket",
            str(tmp_path / "other.sock"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert same_state.returncode == 1
    assert "in use by another skyd" in same_state.stderr
    with DaemonClient(str(first.socket_path)) as client:
        assert client.health()["ok"] is True  # the first one was not disturbed
    assert first.terminate() == 0


def test_skyctl_says_clearly_when_no_daemon_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "skyctl", "--socket", str(tmp_path / "none.sock"), "queue"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "none.sock" in result.stderr and "skyd run" in result.stderr
