"""The docker stand-in fake VMs carry is as strict as the docker CLI where skyd could slip:
unknown flags, missing arguments, bad names, relative mount targets, exec outside a bind
mount or into a container that does not exist, and rm of a running container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from skyd.testing import fake_docker


def stand_in(tmp_path: Path, engine: str = "docker") -> Path:
    tools, _ = fake_docker.tools(str(tmp_path / "state"), engine)
    exe = tmp_path / engine
    exe.write_text(tools[engine])
    exe.chmod(0o755)
    return exe


def call(
    exe: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(exe), *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_unknown_flags_and_missing_arguments_fail_as_docker_does(tmp_path: Path) -> None:
    exe = stand_in(tmp_path)
    done = call(exe, "run", "-d", "--gpu", "all", "alpine")
    assert done.returncode == 125
    assert done.stderr.startswith("unknown flag: --gpu\n\nUsage:  docker run [OPTIONS] IMAGE")
    assert "Run 'docker run --help' for more information" in done.stderr
    assert call(exe, "run", "-dX", "alpine").stderr.startswith("unknown shorthand flag: 'X' in -X")
    assert call(exe, "run", "-d", "--name").stderr.startswith("flag needs an argument: --name")
    missing = call(exe, "run", "-d")
    assert missing.returncode == 1
    assert missing.stderr.startswith("docker: 'docker run' requires at least 1 argument\n")
    podman = call(stand_in(tmp_path, "podman"), "exec", "--bogus", "c", "true")
    assert podman.returncode == 125
    assert podman.stderr.startswith("Error: unknown flag: --bogus")


def test_daemon_side_checks(tmp_path: Path) -> None:
    exe = stand_in(tmp_path)
    base = ["run", "-d", "--network", "host", "--entrypoint", "sleep"]
    assert "Invalid container name" in call(exe, *base, "--name", "-x", "alpine").stderr
    upper = call(exe, *base, "--name", "ok", "Alpine")
    assert upper.returncode == 125 and "(Alpine) must be lowercase" in upper.stderr
    rel = call(exe, *base, "--name", "ok", "-v", f"{tmp_path}:rel", "alpine", "infinity")
    assert "mount path must be absolute" in rel.stderr
    bad_gpus = call(exe, *base, "--name", "ok", "--gpus", "some", "alpine", "infinity")
    assert 'for "--gpus" flag' in bad_gpus.stderr
    good = call(exe, *base, "--name", "ok", "-v", f"{tmp_path}:{tmp_path}", "alpine", "infinity")
    assert good.returncode == 0, good.stderr
    again = call(exe, *base, "--name", "ok", "alpine", "infinity")
    assert again.returncode == 125 and "Conflict." in again.stderr
    assert "No such container: nope" in call(exe, "exec", "nope", "true").stderr
    outside = call(exe, "exec", "-w", "/etc", "ok", "true")
    assert outside.returncode == 126 and "not inside a bind mount" in outside.stderr
    assert call(exe, "exec", "-w", "rel", "ok", "true").returncode == 126
    running = call(exe, "rm", "ok")
    assert running.returncode == 1 and "cannot remove a running container" in running.stderr
    assert call(exe, "rm", "-f", "ok").returncode == 0
    assert call(exe, "rm", "-f", "ok").returncode == 0  # -f: a missing one is no error


def test_exec_sees_only_its_env_and_runs_in_the_bound_dir(tmp_path: Path) -> None:
    exe = stand_in(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    args = ["run", "-d", "--name", "c1", "-v", f"{work}:/job", "alpine"]
    assert call(exe, *args).returncode == 0
    env = {"PATH": "/usr/bin:/bin", "FROM_CALLER": "yes", "SECRET_OUTSIDE": "leak"}
    done = call(
        exe, "exec", "-w", "/job", "-e", "FROM_CALLER", "-e", "X=1", "c1", "sh", "-c",
        'pwd; echo "$FROM_CALLER $X [${SECRET_OUTSIDE:-}] $HOME"',
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(work), "yes 1 [] /root"]
    log = [json.loads(x) for x in Path(tmp_path / "state" / "calls.jsonl").read_text().splitlines()]
    assert [entry["argv"][0] for entry in log] == ["run", "exec"]


def test_exec_runs_out_of_the_clients_reach_and_rm_f_kills_it(tmp_path: Path) -> None:
    exe = stand_in(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    assert call(exe, "run", "-d", "--name", "c2", "-v", f"{work}:{work}", "alpine").returncode == 0
    assert call(exe, "exec", "-w", str(work), "c2", "sh", "-c", "exit 3").returncode == 3
    assert call(exe, "exec", "-w", str(work), "c2", "sh", "-c", "kill -9 $$").returncode == 137
    script = f"echo $$ > {work}/pid; trap 'echo got-term > {work}/term' TERM; sleep 60 & wait"
    argv = [sys.executable, "-I", str(exe), "exec", "-w", str(work), "c2", "sh", "-c"]
    client = subprocess.Popen([*argv, script])
    pid_file = work / "pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.02)
    pid = int(pid_file.read_text())
    assert os.getpgid(pid) == pid != os.getpgid(client.pid)  # a session of its own, as runc's
    client.send_signal(signal.SIGTERM)  # the client does not forward it, and dies of it
    assert client.wait(10) == -signal.SIGTERM
    os.kill(pid, 0)  # the command runs on
    assert not (work / "term").exists()
    assert call(exe, "rm", "-f", "c2").returncode == 0
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "rm -f left the exec'd command running"
        time.sleep(0.02)
    assert not (work / "term").exists()  # SIGKILLed: no handler ran


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
