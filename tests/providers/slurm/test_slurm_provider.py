"""The slurm provider and runner against the real Slurm cluster of scripts/start-slurm.sh."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from skyd.errors import CapacityError
from skyd.model import InstanceState, RunPhase
from skyd.providers.base import TAG_DAEMON, TAG_JOB
from skyd.providers.checks import check_clouds
from skyd.providers.slurm import SlurmRunner
from skyd.providers.slurm.provider import parse_instance_id
from skyd.testing.restarts import reconcile_after_restart
from tests.providers.slurm.slurm_world import (
    command,
    make_provider,
    offer_of,
    request,
    sbatch,
    squeue_ids,
    until_left_squeue,
    until_over,
    until_phase,
    until_states,
)

RUNNING = {InstanceState.RUNNING}
GONE = {InstanceState.TERMINATED}


pytestmark = pytest.mark.usefixtures("slurm_cluster")


@pytest.fixture
def daemon() -> str:
    return f"skyd-t{uuid.uuid4().hex[:10]}"


async def test_offers_are_partitions_and_node_shapes_at_the_internal_price(
    tmp_path: Path,
) -> None:
    provider = await make_provider(
        tmp_path, hourly_price_micros=0, partition_prices={"urgent": 900_000}
    )
    offers = {(o.zone, o.accelerator_name, o.accelerator_count): o for o in provider.offers()}
    assert set(offers) == {
        (part, gpu, n)
        for part in ("lab", "urgent")
        for gpu, n in (("FAKE", 2), ("FAKE", 1), ("", 0))
    }
    lab = offers[("lab", "FAKE", 1)]
    assert (lab.cloud, lab.region, lab.vcpus, lab.memory_gib) == ("slurm", "test", 2.0, 2.0)
    assert lab.price_micros == 0 and lab.spot_price_micros is None
    assert offers[("urgent", "", 0)].price_micros == 900_000
    assert provider.max_nodes(lab) == 2
    only_lab = await make_provider(tmp_path, partitions=["lab"])
    assert {o.zone for o in only_lab.offers()} == {"lab"}


async def test_two_node_job_runs_every_rank_and_is_found_by_its_tags(
    tmp_path: Path, daemon: str
) -> None:
    provider = await make_provider(tmp_path / "cluster")
    runner = SlurmRunner(provider, linger_s=60)
    req = request(offer_of(provider, "lab", 0), "skyd-41-1", nodes=2, daemon=daemon)
    launched = await provider.launch(req)
    ids = [i.instance_id for i in launched]
    assert len(ids) == 2 and len({parse_instance_id(i)[1] for i in ids}) == 1  # type: ignore[index]
    # a retried launch (crash before it was recorded) finds the first job
    assert [i.instance_id for i in await provider.launch(req)] == ids
    await until_states(provider, ids, RUNNING)
    attempt = tmp_path / "attempt"
    cmd = command(
        attempt,
        setup="echo setup-on-$SKYPILOT_NODE_RANK",
        run='echo "rank=$SKYPILOT_NODE_RANK size=$SKYPILOT_NUM_NODES '
        'ips=$(echo $SKYPILOT_NODE_IPS) skyd=$SKYD_NODE_RANK job=$SKYD_JOB_ID"',
    )
    assert await runner.start(attempt, cmd, ids) == 1
    assert await runner.start(attempt, cmd, ids) == 0  # never handed over twice
    status = await until_over(runner, attempt)
    assert (status.phase, status.setup_exit, status.run_exit) == (RunPhase.DONE, 0, 0)
    text = (attempt / "job.log").read_text()
    assert "rank=0 size=2 ips=127.0.0.1 127.0.0.1 skyd=0 job=1" in text
    assert "(node 1) rank=1 size=2 ips=127.0.0.1 127.0.0.1 skyd=1 job=1" in text
    assert "setup-on-0" in text and "(node 1) setup-on-1" in text
    found = await provider.instances({TAG_DAEMON: daemon, TAG_JOB: "41"})
    assert sorted(i.instance_id for i in found) == ids
    assert await provider.describe(tags={TAG_DAEMON: daemon}) == dict.fromkeys(
        ids, InstanceState.RUNNING
    )
    await provider.terminate(ids)
    await until_states(provider, ids, GONE)
    assert not squeue_ids() & {parse_instance_id(ids[0])[1]}  # type: ignore[index]


async def test_gpu_job_gets_its_gres_and_a_failing_run_reports_its_code(
    tmp_path: Path, daemon: str
) -> None:
    provider = await make_provider(tmp_path / "cluster")
    runner = SlurmRunner(provider, linger_s=60)
    launched = await provider.launch(
        request(offer_of(provider, "lab", 2), "skyd-42-1", daemon=daemon)
    )
    ids = [i.instance_id for i in launched]
    await until_states(provider, ids, RUNNING)
    attempt = tmp_path / "attempt"
    await runner.start(attempt, command(attempt, 'echo "gpus=$CUDA_VISIBLE_DEVICES"; exit 3'), ids)
    status = await until_over(runner, attempt)
    assert (status.phase, status.run_exit) == (RunPhase.DONE, 3)
    assert "gpus=0,1" in (attempt / "job.log").read_text()
    await provider.terminate(ids)
    await until_states(provider, ids, GONE)


async def test_requeue_by_slurm_preemption_is_reported_preempted(
    tmp_path: Path, daemon: str
) -> None:
    """A job of the urgent partition (higher PriorityTier) preempts ours; Slurm requeues it."""
    provider = await make_provider(tmp_path / "cluster")
    runner = SlurmRunner(provider, linger_s=60)
    launched = await provider.launch(
        request(offer_of(provider, "lab", 0), "skyd-43-1", nodes=2, daemon=daemon)
    )
    ids = [i.instance_id for i in launched]
    await until_states(provider, ids, RUNNING)
    attempt = tmp_path / "attempt"
    await runner.start(attempt, command(attempt, "sleep 120"), ids)
    urgent = await asyncio.to_thread(
        sbatch, "-p", "urgent", "-N", "2", "--cpus-per-task=2", "--wrap", "true"
    )
    try:
        states = await until_states(provider, ids, {InstanceState.PREEMPTED})
        assert set(states.values()) == {InstanceState.PREEMPTED}
    finally:
        await provider.terminate(ids)
        await asyncio.to_thread(subprocess.run, ["scancel", urgent], check=False)
    await until_states(provider, ids, {InstanceState.PREEMPTED, InstanceState.TERMINATED})
    await until_left_squeue(urgent)  # the next test gets an idle cluster


async def test_slurm_refusal_is_an_error_with_slurms_words(tmp_path: Path, daemon: str) -> None:
    provider = await make_provider(tmp_path / "cluster")
    offer = offer_of(provider, "lab", 2)
    too_many = replace(offer, accelerator_count=3)
    with pytest.raises(CapacityError) as caught:
        await provider.launch(request(too_many, "skyd-44-1", daemon=daemon))
    assert "Requested node configuration is not available" in caught.value.message
    assert caught.value.scope == "slurm/test/lab"
    with pytest.raises(CapacityError, match="has 2 lab-2cpu-2gb-fakex2 nodes; 3 asked"):
        await provider.launch(request(offer, "skyd-45-1", nodes=3, daemon=daemon))
    # Slurm keeps the refused job's record (FAILED, BadConstraints): it is over, not running
    refused = await provider.instances({TAG_DAEMON: daemon})
    assert {i.state for i in refused} == {InstanceState.TERMINATED}


async def test_cancel_while_running_records_killed(tmp_path: Path, daemon: str) -> None:
    provider = await make_provider(tmp_path / "cluster")
    runner = SlurmRunner(provider, linger_s=60)
    launched = await provider.launch(
        request(offer_of(provider, "lab", 0), "skyd-46-1", daemon=daemon)
    )
    ids = [i.instance_id for i in launched]
    await until_states(provider, ids, RUNNING)
    attempt = tmp_path / "attempt"
    await runner.start(attempt, command(attempt, "echo started; sleep 120"), ids)
    await until_phase(runner, attempt, RunPhase.RUN)
    await runner.kill(attempt, 1.0)
    await until_states(provider, ids, GONE)
    status = await runner.status(attempt)
    log = (attempt / "job.log").read_text()
    assert status.phase == RunPhase.KILLED, log
    assert "started" in log


async def test_check_names_each_cluster_and_what_it_offers(tmp_path: Path) -> None:
    provider = await make_provider(tmp_path / "cluster")
    *_, row = await check_clouds({"slurm": provider})
    assert (row.cloud, row.configured, row.enabled) == ("slurm", True, True)
    assert row.reason == "cluster test: partitions lab (2 nodes), urgent (2 nodes)"
    unreachable = await make_provider(
        tmp_path / "cluster",
        login={"host": "127.0.0.1", "port": 9, "user": "nobody", "key_path": "/nonexistent"},
    )
    try:
        assert unreachable.offers() == [] and "test" in unreachable.refresh_errors
        *_, row = await check_clouds({"slurm": unreachable})
        assert not row.enabled and "cluster test" in row.reason
        assert "[[slurm.clusters]]" in row.fix
    finally:
        await unreachable.aclose()


async def test_reconcile_finds_skyds_slurm_jobs_by_their_tags(tmp_path: Path) -> None:
    """After a restart: the recorded job is adopted, an unrecorded one of this daemon is
    cancelled as an orphan, another daemon's job is left alone."""
    provider = await make_provider(tmp_path / "cluster")
    ours, theirs = f"skyd-t{uuid.uuid4().hex[:10]}", f"skyd-t{uuid.uuid4().hex[:10]}"
    offer = offer_of(provider, "lab", 0)
    [recorded] = await provider.launch(request(offer, "skyd-61-1", daemon=ours))
    [orphan] = await provider.launch(request(offer, "skyd-62-1", daemon=ours))
    [foreign] = await provider.launch(request(offer, "skyd-63-1", daemon=theirs))
    report = await reconcile_after_restart(
        provider, recorded, tmp_path / "state", client_token="skyd-61-1", daemon_id=ours
    )
    assert report.errors == {} and report.adopted == 1
    assert [(o.instance_id, o.action) for o in report.orphans] == [
        (orphan.instance_id, "terminated")
    ]
    await until_states(provider, [orphan.instance_id], GONE)
    states = await provider.describe([recorded.instance_id, foreign.instance_id])
    assert set(states.values()) <= {InstanceState.PENDING, InstanceState.RUNNING}
    await provider.terminate([recorded.instance_id, foreign.instance_id])
    await until_states(provider, [recorded.instance_id, foreign.instance_id], GONE)
