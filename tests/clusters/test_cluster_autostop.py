"""Autostop on a virtual clock: what counts as idle, when a cluster stops, stop vs down, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyd.clock import VirtualClock
from skyd.model import InstanceState, JobState
from skyd.providers.base import Provider
from skyd.providers.local import LocalProvider
from skyd.spec import parse_task
from skyd.store.clusters import ClusterState
from tests.clusters.cluster_world import ALICE, CHECK_SECONDS, ClusterWorld, cluster_world, gpu_task

MINUTE = 60.0


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[ClusterWorld]:
    made = cluster_world(tmp_path)
    loop = asyncio.create_task(made.service.run())
    await asyncio.sleep(0)
    yield made
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    made.store.close()


async def launch_idle(world: ClusterWorld, autostop: str | None = "10") -> int:
    """A cluster whose first job has finished at the current time; returns the job id."""
    _cluster, job = await world.service.launch(
        gpu_task(autostop), name="dev", caller=ALICE, base_dir="/tmp"
    )
    world.finish_job(job.id)
    return job.id


async def minutes(world: ClusterWorld, count: float) -> None:
    await world.clock.advance(count * MINUTE)


async def test_an_idle_cluster_is_stopped_after_its_idle_minutes_and_not_before(
    world: ClusterWorld,
) -> None:
    await launch_idle(world, autostop="10")
    await minutes(world, 9)
    assert world.service.get("dev").state == ClusterState.UP
    await minutes(world, 1.5)
    cluster = world.service.get("dev")
    assert cluster.state == ClusterState.STOPPED
    assert [c[0] for c in world.cloud.calls] == ["launch", "stop"]
    assert world.cloud.state_of(cluster.instance_ids[0]) == InstanceState.STOPPED
    assert [i.state for i in world.service.instances(cluster)] == ["STOPPED"]
    events = world.service.events(cluster)
    assert events[-1].kind == "autostop"
    assert events[-1].state == "STOPPED"
    assert "idle for 10 min" in events[-1].reason


async def test_setup_time_counts_as_busy(world: ClusterWorld) -> None:
    _cluster, job = await world.service.launch(
        gpu_task("5"), name="dev", caller=ALICE, base_dir="/tmp"
    )
    world.move_job(job.id, JobState.PROVISIONING, JobState.SETTING_UP)
    await minutes(world, 30)  # a long `pip install`, far past the 5 idle minutes
    assert world.service.get("dev").state == ClusterState.UP
    world.move_job(job.id, JobState.RUNNING, JobState.SUCCEEDED)
    await minutes(world, 4)
    assert world.service.get("dev").state == ClusterState.UP
    await minutes(world, 1.5)
    assert world.service.get("dev").state == ClusterState.STOPPED


async def test_a_new_job_resets_idleness(world: ClusterWorld) -> None:
    await launch_idle(world, autostop="10")
    await minutes(world, 8)
    second = world.service.exec("dev", gpu_task(), caller=ALICE, base_dir="/tmp")
    await minutes(world, 5)  # pending and running: busy
    world.finish_job(second.id)
    finished_at = world.clock.now()
    await minutes(world, 9)
    assert world.service.get("dev").state == ClusterState.UP
    await minutes(world, 1.5)
    cluster = world.service.get("dev")
    assert cluster.state == ClusterState.STOPPED
    stopped_at = world.service.events(cluster)[-1].at
    assert 10 * MINUTE <= stopped_at - finished_at <= 10 * MINUTE + CHECK_SECONDS


async def test_autostop_down_tears_the_cluster_down_and_frees_its_name(
    world: ClusterWorld,
) -> None:
    await launch_idle(world, autostop="{idle_minutes: 3, down: true}")
    [instance_id] = world.service.get("dev").instance_ids
    await minutes(world, 3.5)
    assert [c.name for c in world.service.all_clusters()] == []
    [gone] = world.service.all_clusters(include_down=True)
    assert gone.state == ClusterState.DOWN
    assert world.cloud.state_of(instance_id) == InstanceState.TERMINATED
    assert [i.state for i in world.service.instances(gone)] == ["TERMINATED"]
    assert world.kinds("dev")[-1] == "autostop"
    # the name can be used again
    again, _job = await world.service.launch(gpu_task(), name="dev", caller=ALICE, base_dir="/")
    assert again.id != gone.id and again.state == ClusterState.UP


async def test_cancelled_autostop_never_stops(world: ClusterWorld) -> None:
    await launch_idle(world, autostop="10")
    await minutes(world, 5)
    world.service.set_autostop("dev", ALICE, idle_minutes=None)
    await minutes(world, 120)
    assert world.service.get("dev").state == ClusterState.UP
    assert world.kinds("dev")[-1] == "autostop_set"


async def test_setting_autostop_restarts_the_idle_clock(world: ClusterWorld) -> None:
    await launch_idle(world, autostop=None)
    await minutes(world, 60)  # idle for an hour with autostop off
    world.service.set_autostop("dev", ALICE, idle_minutes=10, down=False)
    await minutes(world, 9)
    assert world.service.get("dev").state == ClusterState.UP
    await minutes(world, 1.5)
    assert world.service.get("dev").state == ClusterState.STOPPED


async def test_an_open_session_keeps_the_cluster_up(world: ClusterWorld) -> None:
    await launch_idle(world, autostop="5")
    [instance_id] = world.service.get("dev").instance_ids
    world.cloud.sessions[instance_id] = 1
    await minutes(world, 30)
    assert world.service.get("dev").state == ClusterState.UP
    world.cloud.sessions[instance_id] = 0
    closed_at = world.clock.now()
    await minutes(world, 5.5)
    cluster = world.service.get("dev")
    assert cluster.state == ClusterState.STOPPED
    # idle counts from the session's end (last seen busy), not from the job's end
    assert world.service.events(cluster)[-1].at - closed_at >= 5 * MINUTE - CHECK_SECONDS


async def test_gpu_load_above_the_threshold_is_busy_and_below_it_idle(
    world: ClusterWorld,
) -> None:
    await launch_idle(world, autostop="5")
    [instance_id] = world.service.get("dev").instance_ids
    world.cloud.gpu_load[instance_id] = 85.0
    await minutes(world, 20)
    assert world.service.get("dev").state == ClusterState.UP
    world.cloud.gpu_load[instance_id] = 3.0  # a driver's background hum, under 10 %
    await minutes(world, 5.5)
    assert world.service.get("dev").state == ClusterState.STOPPED


async def test_a_stopped_cluster_starts_again_and_autostop_applies_again(
    world: ClusterWorld,
) -> None:
    await launch_idle(world, autostop="5")
    await minutes(world, 5.5)
    assert world.service.get("dev").state == ClusterState.STOPPED
    cluster = await world.service.start("dev", ALICE)
    assert cluster.state == ClusterState.UP
    assert [i.state for i in world.service.instances(cluster)] == ["RUNNING"]
    await minutes(world, 4)
    assert world.service.get("dev").state == ClusterState.UP
    await minutes(world, 1.5)
    assert world.service.get("dev").state == ClusterState.STOPPED
    assert world.kinds("dev").count("autostop") == 2


async def test_a_provider_that_cannot_stop_reports_once_and_keeps_the_cluster(
    tmp_path: Path,
) -> None:
    def local(clock: VirtualClock) -> dict[str, Provider]:
        return {"local": LocalProvider(tmp_path / "slots", clock, slots=2, gpus=0)}

    made = cluster_world(tmp_path, providers=local)
    try:
        spec = parse_task("resources:\n  autostop: 5\nrun: echo hi\n")
        _cluster, job = await made.service.launch(spec, name="box", caller=ALICE, base_dir="/")
        made.finish_job(job.id)
        for _ in range(2):
            made.clock.set(made.clock.now() + 6 * MINUTE)
            await made.service.check_once()
        assert made.service.get("box").state == ClusterState.UP
        assert made.kinds("box").count("autostop_failed") == 1
        failed = made.service.events(made.service.get("box"))[-1]
        assert "skyctl down box" in failed.reason
    finally:
        made.store.close()


async def test_a_failing_stop_is_reported_once_and_retried_on_the_next_passes(
    world: ClusterWorld,
) -> None:
    await launch_idle(world, autostop="2")
    world.cloud.failing.add("stop")
    await minutes(world, 4)
    assert world.service.get("dev").state == ClusterState.UP
    stops = [c for c in world.cloud.calls if c[0] == "stop"]
    assert len(stops) >= 3  # tried on every pass after the 2 idle minutes
    assert world.kinds("dev").count("autostop_failed") == 1
    assert "throttling" in world.service.events(world.service.get("dev"))[-1].reason
    world.cloud.failing.clear()
    await minutes(world, 0.5)
    assert world.service.get("dev").state == ClusterState.STOPPED
    assert world.kinds("dev")[-2:] == ["autostop_failed", "autostop"]


async def test_the_loop_survives_a_cloud_that_cannot_describe(world: ClusterWorld) -> None:
    world.cloud.boot_seconds = 30
    await world.service.launch(gpu_task(), name="slow", caller=ALICE, base_dir="/")
    world.cloud.failing.add("describe")
    await minutes(world, 3)
    assert world.service.get("slow").state == ClusterState.INIT
    world.cloud.failing.clear()
    await minutes(world, 1)
    assert world.service.get("slow").state == ClusterState.UP
