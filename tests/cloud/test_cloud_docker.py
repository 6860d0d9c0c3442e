"""`image_id: docker:IMAGE` on cloud VMs, through the daemon: setup and run go inside one
container per node (`docker run -d` then `docker exec`s), with the home bound at the same
path, the host network, the job's env and only that, `--gpus all` on a GPU offer, and the
container removed at the end and on cancel. The VMs' `docker` is the strict stand-in
(skyd.testing.fake_docker): no real container runs on this machine."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.testing import fake_docker
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import settings_for_tests, wait_until

# VMs boot and jobs run for real: on a machine shared by many test runs this is slow
pytestmark = pytest.mark.timeout(300)
TERMINAL = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")

CPU_TASK = """\
name: in-a-container
resources:
  cloud: aws
  region: us-east-1
  instance_type: c5.large
  image_id: docker:python:3.12-slim
workdir: ./src
envs:
  GREETING: hello-from-the-image
setup: |
  echo built > setup-was-here
run: |
  echo "$GREETING"
  cat data/input.txt
  cat setup-was-here
  echo "vm-marker=[${SKYD_FAKE_VM:-}]"
  echo "path=$PATH"
"""

GPU_TASK = """\
name: gpu-in-a-container
resources:
  cloud: gcp
  accelerators: T4:1
  image_id: docker:nvcr.io/nvidia/pytorch:24.01-py3
run: echo on-the-gpu-image
"""

# writes only in its SIGTERM handler, after a save that takes a while (tests' grace: 2 s)
SAVER = """\
name: saver
resources:
  cloud: aws
  region: us-east-1
  instance_type: c5.large
  image_id: docker:python:3.12-slim
run: |
  trap 'sleep 0.5; echo saved-on-term; exit 0' TERM
  echo started-looping
  while :; do sleep 0.1; done
"""


def calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def option_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == flag]


@pytest.fixture
def docker_log() -> Iterator[tuple[dict[str, str], Path]]:
    # in /tmp itself: the VMs' login users write the stand-in's log and state there, which
    # pytest's private tmp_path would forbid
    root = tempfile.mkdtemp(prefix="skyd-fake-docker-")
    tools, log = fake_docker.tools(root)
    yield tools, Path(log)
    shutil.rmtree(root, ignore_errors=True)


async def test_setup_and_run_go_inside_the_image_on_a_vm(
    tmp_path: Path, docker_log: tuple[dict[str, str], Path]
) -> None:
    tools, log = docker_log
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "data" / "input.txt").write_text("payload-line\n")
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.2, tools=tools)
    await world.start()
    try:
        final, text = await _run(world, tmp_path, CPU_TASK)
        gpu_final, gpu_text = await _run(world, tmp_path, GPU_TASK)
    finally:
        await world.stop()
    assert final["state"] == "SUCCEEDED", (final["reason"], text)
    assert "hello-from-the-image" in text and "payload-line" in text
    assert "built" in text  # what setup wrote in the container is there for run
    # nothing of the VM's own environment reaches the container, and its PATH is the image's
    assert "vm-marker=[]" in text
    assert f"path={fake_docker.IMAGE_PATH}" in text
    recorded = calls(log)
    seen = [c["argv"] for c in recorded]
    runs = [a for a in seen if a[0] == "run"]
    assert len(runs) == 2, gpu_text
    cpu_run = runs[0]
    cpu_vm = recorded[0]["vm"]
    execs = [c["argv"] for c in recorded if c["argv"][0] == "exec" and c["vm"] == cpu_vm]
    assert option_values(cpu_run, "--network") == ["host"]
    assert "--gpus" not in cpu_run
    assert cpu_run[-2:] == ["python:3.12-slim", "infinity"]
    name = option_values(cpu_run, "--name")[0]
    cpu_execs = [a for a in execs if name in a]
    assert len(cpu_execs) == 2  # setup, then run, in the same container
    workdir = option_values(cpu_execs[0], "-w")[0]
    assert workdir.endswith("/workdir")
    binds = [v.split(":")[0] for v in option_values(cpu_run, "-v")]
    assert any(workdir.startswith(b + "/") for b in binds)  # the workdir is bound in
    assert "GREETING" in option_values(cpu_execs[1], "-e")  # by name: no value on argv
    assert not any("hello-from-the-image" in word for a in seen for word in a)
    assert {"engine": "docker", "vm": cpu_vm, "argv": ["rm", "-f", name]} in recorded
    assert gpu_final["state"] == "SUCCEEDED", (gpu_final["reason"], gpu_text)
    assert "on-the-gpu-image" in gpu_text
    assert option_values(runs[1], "--gpus") == ["all"]


async def test_a_cancel_s_sigterm_reaches_the_job_inside_its_container_then_it_is_removed(
    tmp_path: Path, docker_log: tuple[dict[str, str], Path]
) -> None:
    tools, log = docker_log
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.2, tools=tools)
    await world.start()
    try:
        final, text = await _run(world, tmp_path, SAVER, cancel_on="started-looping")
    finally:
        await world.stop()
    assert final["state"] == "CANCELLED", (final["reason"], text)
    # the handler ran in the container: the `docker exec` client alone got no SIGTERM to it
    assert "saved-on-term" in text, text
    assert "killed (signal 15)" in text, text
    seen = [c["argv"] for c in calls(log)]
    name = option_values(next(a for a in seen if a[0] == "run"), "--name")[0]
    assert seen[-1] == ["rm", "-f", name]


async def test_a_vm_without_docker_or_podman_never_runs_the_task_bare(tmp_path: Path) -> None:
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.2)  # no engine on the VMs
    await world.start()
    try:
        final, text = await _run(world, tmp_path, GPU_TASK.replace("on-the-gpu-image", "BARE"))
    finally:
        await world.stop()
    assert final["state"] == "FAILED_SETUP", final
    # no engine on PATH, or (a host with a docker client but no daemon) one that cannot
    # start the container: either way setup fails with the reason, nothing runs bare
    assert (
        "needs docker or podman on this machine and neither is installed" in text
        or "could not start nvcr.io/nvidia/pytorch:24.01-py3" in text
    ), text
    assert "BARE" not in text.replace("echo BARE", "")


async def _run(
    world: CloudWorld, tmp_path: Path, task: str, cancel_on: str | None = None
) -> tuple[dict[str, Any], str]:
    settings = world.settings(settings_for_tests(tmp_path / f"d{len(list(tmp_path.iterdir()))}"))
    daemon = await world.start_daemon(settings)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(client.submit_task, task, str(tmp_path), None)
            job_id = int(job["id"])

            def text() -> str:
                return b"".join(client.job_logs(job_id, follow=False)).decode()

            if cancel_on is not None:
                await asyncio.to_thread(
                    wait_until, lambda: cancel_on in text(), timeout=90, error=text
                )
                await asyncio.to_thread(client.cancel_job, job_id)
            final = await asyncio.to_thread(
                wait_until,
                lambda: j if (j := client.get_job(job_id))["state"] in TERMINAL else None,
                timeout=90,
                error=lambda: client.get_job(job_id),
            )
            return final, await asyncio.to_thread(text)
    finally:
        await asyncio.to_thread(daemon.stop)
