"""The local activity probes: sessions found by their environment, GPU load from nvidia-smi."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.clock import VirtualClock
from skyd.clusters import SESSION_ENV, LocalSessionProbe
from skyd.clusters.activity import parse_utilization
from skyd.providers.base import TAG_CLUSTER, Provider
from skyd.providers.local import LocalProvider
from skyd.spec import parse_task
from skyd.store.clusters import ClusterState
from skyd.store.records import InstanceRecord
from tests.clusters.cluster_world import ALICE, cluster_world


def record(cluster: str) -> InstanceRecord:
    return InstanceRecord(
        provider="local",
        instance_id="local-x",
        job_id=None,
        attempt=0,
        client_token="x",
        cloud="local",
        region="local",
        zone="",
        instance_type="localhost",
        spot=False,
        state="RUNNING",
        hourly_price_micros=0,
        launched_at=0.0,
        ended_at=None,
        tags={TAG_CLUSTER: cluster},
        data={},
    )


def session(cluster: str) -> subprocess.Popen[bytes]:
    """A stand-in for a login shell opened into the cluster: a process carrying its marker."""
    env = dict(os.environ, **{SESSION_ENV: cluster})
    code = "import sys; sys.stdin.read()"  # lives until its stdin closes
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE)


@pytest.fixture
def shell() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)


async def test_sessions_are_counted_per_cluster(shell: list[subprocess.Popen[bytes]]) -> None:
    probe = LocalSessionProbe()
    assert await probe.active_sessions(record("alpha-7f3")) == 0
    shell.append(session("alpha-7f3"))
    shell.append(session("alpha-7f3"))
    shell.append(session("alpha-7f3-other"))
    assert await probe.active_sessions(record("alpha-7f3")) == 2
    assert await probe.active_sessions(record("alpha-7f3-other")) == 1
    first = shell[0]
    assert first.stdin is not None
    first.stdin.close()
    first.wait(timeout=30)
    assert await probe.active_sessions(record("alpha-7f3")) == 1
    assert await LocalSessionProbe().active_sessions(record("")) == 0


async def test_a_local_cluster_with_a_session_stays_up_and_goes_down_after(
    tmp_path: Path, shell: list[subprocess.Popen[bytes]]
) -> None:
    def local(clock: VirtualClock) -> dict[str, Provider]:
        return {"local": LocalProvider(tmp_path / "slots", clock, slots=1, gpus=0)}

    world = cluster_world(tmp_path, providers=local, activity=LocalSessionProbe())
    service = world.service
    try:
        spec = parse_task("resources:\n  autostop: {idle_minutes: 1, down: true}\nrun: 'true'\n")
        _cluster, job = await service.launch(spec, name="box-a1", caller=ALICE, base_dir="/")
        world.finish_job(job.id)
        shell.append(session("box-a1"))
        world.clock.set(world.clock.now() + 300)
        await service.check_once()
        assert service.get("box-a1").state == ClusterState.UP
        stdin = shell[0].stdin
        assert stdin is not None
        stdin.close()
        shell[0].wait(timeout=30)
        await service.check_once()  # first seen idle: the clock starts
        assert service.get("box-a1").state == ClusterState.UP
        world.clock.set(world.clock.now() + 61)
        await service.check_once()
        [gone] = service.all_clusters(include_down=True)
        assert gone.state == ClusterState.DOWN
    finally:
        world.store.close()


def test_nvidia_smi_output_is_read_as_the_busiest_gpu() -> None:
    assert parse_utilization("3\n87\n0\n") == 87.0
    assert parse_utilization("") is None
    assert parse_utilization("[N/A]\n") is None
