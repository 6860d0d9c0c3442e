"""The ssh provider and runner against a real OpenSSH server on loopback (skipped without sshd).

scripts/start-sshd.sh starts it with keys of its own in a temporary directory; it is
never required: where /usr/sbin/sshd is not installed these tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.model import LaunchRequest, RunPhase
from skyd.providers.ssh import SshConnections, SshHost
from skyd.runner.process import RunCommand
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_node import ssh_nodes
from tests.ssh.ssh_helpers import ProviderFactory, until_over, until_phase

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "start-sshd.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def openssh(tmp_path: Path) -> Iterator[dict[str, str]]:
    if not Path("/usr/sbin/sshd").exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (scripts/start-sshd.sh DIR PORT --install)")
    directory = tmp_path / "sshd"
    done = subprocess.run(
        ["sh", str(SCRIPT), str(directory), str(_free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"could not start sshd: {done.stderr.strip()}")
    settings = dict(
        line.split("=", 1) for line in (directory / "env").read_text().splitlines() if line
    )
    yield settings
    os.kill(int((directory / "sshd.pid").read_text()), signal.SIGTERM)


def _host(settings: dict[str, str], remote_root: Path) -> SshHost:
    return SshHost(
        name="openssh",
        host="127.0.0.1",
        port=int(settings["SKYD_SSHD_PORT"]),
        user=settings["SKYD_SSHD_USER"],
        key_path=Path(settings["SKYD_SSHD_KEY"]),
        known_hosts=Path(settings["SKYD_SSHD_KNOWN_HOSTS"]),
        max_jobs=2,
        remote_root=str(remote_root),  # absolute: keep the test out of the real home
        python=sys.executable,
    )


async def test_job_runs_is_cancelled_and_reattached_over_openssh(
    tmp_path: Path, openssh: dict[str, str], make_provider: ProviderFactory, runner: SshRunner
) -> None:
    provider = make_provider(_host(openssh, tmp_path / "remote"))
    offer = provider.offers()[0]
    first = await provider.launch(
        LaunchRequest(job_id=1, attempt=1, client_token="real-1", offer=offer, spot=False)
    )
    assert await provider.describe([first[0].instance_id]) == {first[0].instance_id: "RUNNING"}
    workdir = tmp_path / "src"
    workdir.mkdir()
    (workdir / "main.sh").write_text('echo "rank $SKYD_NODE_RANK in $(basename $PWD)"; exit 5\n')
    log = tmp_path / "job.log"
    log.touch()
    attempt = tmp_path / "attempt-1"
    command = RunCommand(
        setup="echo setup ran",
        run="sh main.sh",
        cwd=tmp_path,
        env={"SKYD_JOB_ID": "1"},
        log_path=log,
        workdir_source=workdir,
    )
    await runner.start(attempt, command, ssh_nodes(provider, [first[0].instance_id]))
    status = await until_over(runner, attempt)
    assert (status.phase, status.setup_exit, status.run_exit) == (RunPhase.DONE, 0, 5)
    assert "setup ran" in log.read_text()
    assert "rank 0 in workdir" in log.read_text()

    second = await provider.launch(
        LaunchRequest(job_id=2, attempt=1, client_token="real-2", offer=offer, spot=False)
    )
    attempt2 = tmp_path / "attempt-2"
    long_running = RunCommand(
        setup=None, run="echo waiting; sleep 300", cwd=tmp_path, env={}, log_path=log
    )
    await runner.start(attempt2, long_running, ssh_nodes(provider, [second[0].instance_id]))
    await until_phase(runner, attempt2, RunPhase.RUN)
    fresh = SshConnections(connect_timeout_s=2.0)
    try:
        restarted = SshRunner(fresh, command_timeout_s=5.0)
        assert (await restarted.status(attempt2)).phase == RunPhase.RUN
        await provider.terminate([second[0].instance_id])  # kills the remote group
        assert (await restarted.status(attempt2)).phase == RunPhase.KILLED
    finally:
        await fresh.aclose()
    await provider.terminate([first[0].instance_id])
    assert provider.usage()["openssh"].jobs == 0
