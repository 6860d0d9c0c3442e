"""The slurm provider reaching its login node over SSH (a real OpenSSH server on loopback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.model import InstanceState, RunPhase
from skyd.providers.slurm import SlurmRunner
from skyd.runner.process import RunCommand
from tests.providers.slurm.slurm_world import (
    SCRIPT,
    make_provider,
    offer_of,
    request,
    until_over,
)
from tests.providers.slurm.slurm_world import until_states as until_slurm_states

START_SSHD = SCRIPT.parent / "start-sshd.sh"


pytestmark = pytest.mark.usefixtures("slurm_cluster")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def login_node(tmp_path: Path) -> Iterator[dict[str, object]]:
    directory = tmp_path / "sshd"
    done = subprocess.run(
        ["sh", str(START_SSHD), str(directory), str(_free_port()), "--install"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in (directory / "env").read_text().splitlines())
    yield {
        "host": "127.0.0.1",
        "port": int(env["SKYD_SSHD_PORT"]),
        "user": env["SKYD_SSHD_USER"],
        "key_path": env["SKYD_SSHD_KEY"],
        "known_hosts": env["SKYD_SSHD_KNOWN_HOSTS"],
    }
    os.kill(int((directory / "sshd.pid").read_text()), signal.SIGTERM)


async def test_job_over_ssh_with_its_workdir_and_mounts(
    tmp_path: Path, login_node: dict[str, object]
) -> None:
    provider = await make_provider(tmp_path / "cluster", login=login_node)
    try:
        assert provider.refresh_errors == {} and provider.offers()
        runner = SlurmRunner(provider, linger_s=60)
        daemon = f"skyd-t{uuid.uuid4().hex[:10]}"
        launched = await provider.launch(
            request(offer_of(provider, "lab", 0), "skyd-51-1", daemon=daemon)
        )
        ids = [i.instance_id for i in launched]
        await until_slurm_states(provider, ids, {InstanceState.RUNNING})
        source = tmp_path / "src"
        source.mkdir()
        (source / "main.sh").write_text('echo "from the workdir: $(cat data/input.txt)"\n')
        (tmp_path / "input.txt").write_text("mounted\n")
        attempt = tmp_path / "attempt"
        attempt.mkdir()
        command = RunCommand(
            setup=None,
            run="sh main.sh",
            cwd=attempt,
            env={"SKYD_JOB_ID": "51"},
            log_path=attempt / "job.log",
            workdir_source=source,
            file_mounts={"data/input.txt": str(tmp_path / "input.txt")},
        )
        await runner.start(attempt, command, ids)
        status = await until_over(runner, attempt)
        log = (attempt / "job.log").read_text()
        assert (status.phase, status.run_exit) == (RunPhase.DONE, 0), log
        assert "from the workdir: mounted" in log
        await provider.terminate(ids)
        await until_slurm_states(provider, ids, {InstanceState.TERMINATED})
    finally:
        await provider.aclose()
