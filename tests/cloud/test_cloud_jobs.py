"""A job runs on a launched cloud VM end to end, on each fake cloud: the daemon waits for the
VM's sshd (a real OpenSSH, after a boot delay), pins its host key, logs in as the image's
user, ships the workdir as a tar stream (excludes honoured), runs setup then run with the
task's env, streams the output back, records the exit code and terminates the VM."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.catalog import Catalog
from skyd.daemon import Daemon
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

PINS = {
    "aws": "cloud: aws\n  region: us-east-1\n  instance_type: c5.large",
    "gcp": "cloud: gcp\n  zone: us-central1-a\n  instance_type: n2-standard-8",
    "azure": "cloud: azure\n  region: eastus\n  instance_type: Standard_D4s_v5",
}


def task(cloud: str) -> str:
    return f"""\
name: cpu-on-{cloud}
resources:
  {PINS[cloud]}
workdir: ./src
envs:
  GREETING: hello-from-{cloud}
setup: echo "setup as $(id -un)" && test -f data/input.txt
run: |
  echo "$GREETING rank=$SKYD_NODE_RANK"
  cat data/input.txt
  test ! -e build/junk.o && echo excluded-ok
"""


async def test_a_cpu_job_succeeds_on_each_fake_cloud(tmp_path: Path) -> None:
    world = CloudWorld(tmp_path / "world", boot_delay_s=1.0)
    await world.start()
    try:
        await _cpu_jobs(world, tmp_path)
    finally:
        await world.stop()


async def _cpu_jobs(world: CloudWorld, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "data" / "input.txt").write_text("payload-line\n")
    (src / "build").mkdir()
    (src / "build" / "junk.o").write_text("x")
    (src / ".gitignore").write_text("build/\n")
    settings = world.settings(settings_for_tests(tmp_path))
    catalog = Catalog.load(settings.catalog_dir)
    providers = world.providers(catalog)
    daemon = DaemonThread(settings)
    daemon.daemon = Daemon(settings, providers=providers)
    await asyncio.to_thread(daemon.start)
    finals = {}
    logs = {}
    try:
        with DaemonClient(daemon.socket_path) as client:

            def all_logs(job_id: int) -> str:
                return b"".join(client.job_logs(job_id, follow=False)).decode()

            ids = {}
            for cloud in PINS:
                job = await asyncio.to_thread(client.submit_task, task(cloud), str(tmp_path), None)
                ids[cloud] = int(job["id"])
            for cloud, job_id in ids.items():
                finals[cloud] = await asyncio.to_thread(
                    wait_until,
                    lambda job_id=job_id: (
                        j
                        if (j := client.get_job(job_id))["state"]
                        in ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")
                        else None
                    ),
                    timeout=90,
                    error=lambda job_id=job_id: client.get_job(job_id),
                )
                logs[cloud] = await asyncio.to_thread(all_logs, job_id)
    finally:
        await asyncio.to_thread(daemon.stop)
    for cloud, final in finals.items():
        assert final["state"] == "SUCCEEDED", (cloud, final["reason"], logs[cloud])
        assert final["placement"]["provider"] == cloud
        log = logs[cloud]
        assert f"hello-from-{cloud} rank=0" in log and "payload-line" in log, log
        assert "excluded-ok" in log
        kinds = [e["kind"] for e in final["events"]]
        assert "launched" in kinds
    assert world.machines.running() == []  # every VM was terminated
