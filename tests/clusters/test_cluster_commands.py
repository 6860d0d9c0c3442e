"""Cluster commands against the in-memory cloud: launch (with failover and restart), exec,
stop/start/down with their refusals, ownership, and where the scheduler runs a bound job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.errors import (
    ConflictError,
    InfeasibleError,
    NotFoundError,
    PermissionDeniedError,
    SpecError,
)
from skyd.model import InstanceState, JobState, LaunchRequest
from skyd.providers.base import TAG_CLUSTER, TAG_MANAGED
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.clusters import ClusterState, NewJob, insert_cluster, record_plan
from tests.clusters.cluster_world import ADMIN, ALICE, BOB, ClusterWorld, cluster_world, gpu_task


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ClusterWorld]:
    made = cluster_world(tmp_path)
    yield made
    made.store.close()


async def test_launch_records_tagged_instances_owned_by_the_cluster_not_the_job(
    world: ClusterWorld,
) -> None:
    cluster, job = await world.service.launch(gpu_task(), name="dev", caller=ALICE, base_dir="/tmp")
    assert cluster.state == ClusterState.UP and cluster.owner_uid == ALICE.uid
    assert cluster.provider == "memcloud"
    assert cluster.placement is not None and cluster.placement["zone"] == "zone-a"
    [instance] = world.service.instances(cluster)
    assert instance.job_id is None  # so the scheduler's end-of-job teardown leaves it alone
    assert instance.tags[TAG_CLUSTER] == "dev" and instance.tags[TAG_MANAGED] == "1"
    assert instance_store.instances_for_job(world.store, job.id) == []
    assert job.state == JobState.PENDING and job.name == "train"
    assert world.service.cluster_of_job(job.id) == world.service.get("dev")
    provider, instances = world.service.target_for("dev")
    assert provider == "memcloud" and [i.instance_id for i in instances] == [instance.instance_id]
    assert world.kinds("dev") == ["cluster_created", "cluster_placed", "cluster_launched"]
    assert instance.data["owner_uid"] == ALICE.uid  # who pays, with no job to say so
    assert world.service.job_env(job.id) == {
        "SKYD_CLUSTER": "dev",
        "SKYPILOT_CLUSTER_NAME": "dev",
    }
    assert world.service.target_for_job(job.id) == (provider, instances)


async def test_the_scheduler_learns_per_job_whether_and_where_a_cluster_runs_it(
    tmp_path: Path,
) -> None:
    world = cluster_world(tmp_path, boot_seconds=60)
    try:
        plain, _event = job_store.insert_job(
            world.store,
            name="batch",
            owner_uid=ALICE.uid,
            owner_name="alice",
            project=None,
            priority=0,
            spec_json=gpu_task().to_json(),
            base_dir="/",
            deadline=None,
            now=world.clock.now(),
        )
        assert world.service.target_for_job(plain.id) is None
        _cluster, job = await world.service.launch(
            gpu_task(), name="dev", caller=ALICE, base_dir="/"
        )
        with pytest.raises(ConflictError, match="INIT"):
            world.service.target_for_job(job.id)  # booting: the job waits
        world.clock.set(world.clock.now() + 60)
        await world.service.check_once()
        target = world.service.target_for_job(job.id)
        assert target is not None and target.provider == "memcloud"
        await world.service.down("dev", ALICE, force=True)
        with pytest.raises(NotFoundError, match="cluster dev of job"):
            world.service.target_for_job(job.id)
    finally:
        world.store.close()


async def test_a_zone_without_capacity_is_blocked_and_the_next_offering_tried(
    world: ClusterWorld,
) -> None:
    world.cloud.refuse.add("zone-a")
    cluster, _job = await world.service.launch(
        gpu_task(), name="dev", caller=ALICE, base_dir="/tmp"
    )
    assert cluster.state == ClusterState.UP
    assert cluster.placement is not None and cluster.placement["zone"] == "zone-b"
    events = world.service.events(cluster)
    failed = [e for e in events if e.kind == "cluster_launch_failed"]
    assert len(failed) == 1
    assert "zone-a" in failed[0].reason and "blocked memcloud/region-1/zone-a" in failed[0].reason


async def test_a_launch_that_fails_everywhere_leaves_the_cluster_down_and_its_job_failed(
    world: ClusterWorld,
) -> None:
    world.cloud.refuse.update({"zone-a", "zone-b"})
    with pytest.raises(InfeasibleError, match=r"tried memcloud/region-1/zone-b/mem\.gpu1"):
        await world.service.launch(gpu_task(), name="dev", caller=ALICE, base_dir="/tmp")
    [cluster] = world.service.all_clusters(include_down=True)
    assert cluster.state == ClusterState.DOWN
    [job] = world.service.jobs(cluster)
    assert job.state == JobState.FAILED and "cluster dev is down" in (job.reason or "")
    with pytest.raises(NotFoundError):
        world.service.get("dev")


async def test_a_cluster_that_boots_slowly_is_up_once_its_instances_run(tmp_path: Path) -> None:
    world = cluster_world(tmp_path, boot_seconds=90)
    try:
        cluster, _job = await world.service.launch(
            gpu_task(), name="dev", caller=ALICE, base_dir="/tmp"
        )
        assert cluster.state == ClusterState.INIT
        with pytest.raises(ConflictError, match="not UP"):
            world.service.target_for("dev")
        world.clock.set(world.clock.now() + 60)
        await world.service.check_once()
        assert world.service.get("dev").state == ClusterState.INIT
        world.clock.set(world.clock.now() + 60)
        await world.service.check_once()
        assert world.service.get("dev").state == ClusterState.UP
        assert world.kinds("dev")[-1] == "cluster_up"
    finally:
        world.store.close()


async def test_exec_queues_a_job_on_the_cluster_without_launching(world: ClusterWorld) -> None:
    cluster, first = await world.service.launch(
        gpu_task(), name="dev", caller=ALICE, base_dir="/tmp"
    )
    job = world.service.exec("dev", gpu_task(), caller=ALICE, base_dir="/tmp")
    assert [c[0] for c in world.cloud.calls] == ["launch"]
    assert [j.id for j in world.service.jobs(cluster)] == [first.id, job.id]
    # launch -c on an existing cluster is the same as exec
    _same, third = await world.service.launch(gpu_task(), name="dev", caller=ALICE, base_dir="/")
    assert [c[0] for c in world.cloud.calls] == ["launch"]
    assert world.service.cluster_of_job(third.id) == world.service.get("dev")


async def test_only_the_owner_or_an_admin_may_change_a_cluster(world: ClusterWorld) -> None:
    _cluster, job = await world.service.launch(
        gpu_task(), name="dev", caller=ALICE, base_dir="/tmp"
    )
    world.finish_job(job.id)
    with pytest.raises(PermissionDeniedError, match="belongs to"):
        await world.service.stop("dev", BOB)
    with pytest.raises(PermissionDeniedError):
        await world.service.down("dev", BOB)
    with pytest.raises(PermissionDeniedError):
        world.service.set_autostop("dev", BOB, idle_minutes=1)
    with pytest.raises(PermissionDeniedError):
        world.service.exec("dev", gpu_task(), caller=BOB, base_dir="/tmp")
    assert world.service.get("dev").state == ClusterState.UP
    stopped = await world.service.stop("dev", ADMIN)
    assert stopped.state == ClusterState.STOPPED


async def test_stop_and_down_refuse_a_cluster_with_active_jobs_unless_forced(
    world: ClusterWorld,
) -> None:
    _cluster, job = await world.service.launch(
        gpu_task(), name="dev", caller=ALICE, base_dir="/tmp"
    )
    world.move_job(job.id, JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING)
    with pytest.raises(ConflictError, match=rf"active jobs \({job.id}\).*--force"):
        await world.service.stop("dev", ALICE)
    with pytest.raises(ConflictError, match="--force"):
        await world.service.down("dev", ALICE)
    assert [c[0] for c in world.cloud.calls] == ["launch"]
    stopped = await world.service.stop("dev", ALICE, force=True)
    assert world.cancelled == [job.id]
    assert stopped.state == ClusterState.STOPPED
    with pytest.raises(ConflictError, match="skyctl start dev"):
        world.service.exec("dev", gpu_task(), caller=ALICE, base_dir="/tmp")
    gone = await world.service.down("dev", ALICE)
    assert gone.state == ClusterState.DOWN
    assert world.cloud.state_of(gone.instance_ids[0]) == InstanceState.TERMINATED


async def test_a_cluster_whose_instance_vanishes_while_starting_is_down(
    tmp_path: Path,
) -> None:
    world = cluster_world(tmp_path, boot_seconds=30)
    try:
        cluster, job = await world.service.launch(
            gpu_task(), name="dev", caller=ALICE, base_dir="/tmp"
        )
        world.cloud.preempt(cluster.instance_ids[0])
        await world.service.check_once()
        [gone] = world.service.all_clusters(include_down=True)
        assert gone.state == ClusterState.DOWN and "terminated" in gone.reason
        failed = world.service.jobs(gone)[0]
        assert failed.id == job.id and failed.state == JobState.FAILED
    finally:
        world.store.close()


async def test_bad_names_and_minutes_are_refused_with_the_field(world: ClusterWorld) -> None:
    with pytest.raises(SpecError, match="lower-case") as bad:
        await world.service.launch(gpu_task(), name="Dev_1", caller=ALICE, base_dir="/tmp")
    assert bad.value.field == "name"
    await world.service.launch(gpu_task(), name="dev", caller=ALICE, base_dir="/tmp")
    with pytest.raises(SpecError, match="idle_minutes") as negative:
        world.service.set_autostop("dev", ALICE, idle_minutes=-1)
    assert negative.value.field == "idle_minutes"
    with pytest.raises(NotFoundError, match="skyctl clusters"):
        await world.service.stop("nope", ALICE)


async def test_a_launch_cut_short_after_placement_adopts_the_cloud_instance(
    tmp_path: Path,
) -> None:
    world = cluster_world(tmp_path)
    try:
        # a daemon that died between the provider's answer and recording it left this behind
        cluster, _job, _events = insert_cluster(
            world.store,
            name="dev",
            owner_uid=ALICE.uid,
            owner_name="alice",
            spec_json=gpu_task().to_json(),
            first_job=NewJob("train", ALICE.uid, "alice", None, 0, gpu_task().to_json(), "/"),
            autostop_minutes=None,
            autostop_down=False,
            now=world.clock.now(),
        )
        offer = world.cloud.offerings[0]
        placement = {"provider": "memcloud", "offer_key": offer.key, "spot": False}
        record_plan(
            world.store,
            cluster.id,
            provider="memcloud",
            placement=placement,
            launch_token="skyd-cluster-tok",
            now=world.clock.now(),
            reason="test",
        )
        made = await world.cloud.launch(
            LaunchRequest(0, 0, "skyd-cluster-tok", offer, False, tags={TAG_CLUSTER: "dev"})
        )
        await world.service.check_once()
        adopted = world.service.get("dev")
        assert adopted.state == ClusterState.UP
        assert adopted.instance_ids == (made[0].instance_id,)
        assert [c for c in world.cloud.calls if c[0] == "launch"][-1] == (
            "launch",
            ("skyd-cluster-tok",),
        )
        assert len(await world.cloud.describe()) == 1  # nothing launched twice
    finally:
        world.store.close()
