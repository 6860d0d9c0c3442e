"""The kubernetes provider (kubernetes_asyncio over HTTP) against the fake API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client, watch

from skyd.errors import AuthError, CapacityError, QuotaError
from skyd.model import InstanceState, RunPhase
from skyd.providers.base import TAG_DAEMON, TAG_JOB
from skyd.providers.checks import check_clouds
from skyd.providers.kubernetes import KubernetesProvider, KubernetesRunner
from skyd.testing.fake_kube.server import FakeKubeServer
from skyd.testing.restarts import reconcile_after_restart
from tests.providers.kubernetes.kube_world import (
    CONTEXT,
    command,
    make_provider,
    offer_of,
    request,
    until_over,
    until_states,
)

RUNNING = {InstanceState.RUNNING}


@pytest.fixture
async def provider(cluster: FakeKubeServer) -> AsyncIterator[KubernetesProvider]:
    made = await make_provider(linger_s=30)
    yield made
    await made.aclose()


async def test_offers_are_node_shapes_with_named_gpus(provider: KubernetesProvider) -> None:
    offers = {(o.instance_type, o.accelerator_name, o.accelerator_count) for o in provider.offers()}
    assert offers == {
        ("4cpu-16gb", "", 0),
        ("8cpu-64gb-A100x2", "A100", 2),
        ("8cpu-64gb-A100x1", "A100", 1),
        ("8cpu-64gb-cpu", "", 0),
    }
    gpu = offer_of(provider, 2)
    assert (gpu.cloud, gpu.region, gpu.price_micros) == ("kubernetes", CONTEXT, 0)
    assert provider.max_nodes(gpu) == 2
    assert provider.refresh_errors == {}
    *_, row = await check_clouds({"kubernetes": provider})
    assert (row.cloud, row.enabled) == ("kubernetes", True)
    assert row.reason == f"context {CONTEXT}: 3 ready node(s), 4 GPU(s)"


async def test_current_context_is_used_when_none_is_configured(cluster: FakeKubeServer) -> None:
    provider = await make_provider(contexts=[])
    try:
        assert provider.contexts == [CONTEXT] and provider.offers()
    finally:
        await provider.aclose()


async def test_two_node_indexed_job_runs_every_rank(
    provider: KubernetesProvider, cluster: FakeKubeServer, tmp_path: Path
) -> None:
    runner = KubernetesRunner(provider)
    req = request(offer_of(provider, 1), 31, nodes=2)
    launched = await provider.launch(req)
    ids = [i.instance_id for i in launched]
    assert ids == ["skyd-31-1.0@fake", "skyd-31-1.1@fake"]
    assert [i.instance_id for i in await provider.launch(req)] == ids  # idempotent
    await until_states(provider, ids, RUNNING)
    pods = cluster.pods("batch.kubernetes.io/job-name=skyd-31-1")
    limits = [p["spec"]["containers"][0]["resources"]["limits"] for p in pods]
    assert limits == [{"cpu": "1", "nvidia.com/gpu": "1"}] * 2
    assert {p["spec"]["nodeSelector"]["nvidia.com/gpu.product"] for p in pods} == {
        "NVIDIA-A100-SXM4-80GB"
    }
    attempt = tmp_path / "attempt"
    cmd = command(
        attempt,
        setup="echo setup-$SKYPILOT_NODE_RANK",
        run='echo "rank=$SKYPILOT_NODE_RANK size=$SKYPILOT_NUM_NODES '
        'ips=$(echo $SKYPILOT_NODE_IPS) job=$SKYD_JOB_ID says=$GREETING"',
    )
    assert await runner.start(attempt, cmd, ids) == 1
    assert await runner.start(attempt, cmd, ids) == 0
    status = await until_over(runner, attempt)
    assert (status.phase, status.run_exit) == (RunPhase.DONE, 0)
    log = (attempt / "job.log").read_text()
    assert "rank=0 size=2 ips=127.0.0.1 127.0.0.1 job=5 says=it's me" in log
    assert "(node 1) rank=1 size=2 ips=127.0.0.1 127.0.0.1 job=5 says=it's me" in log
    found = await provider.instances({TAG_DAEMON: "skyd-test", TAG_JOB: "31"})
    assert [(i.instance_id, i.state) for i in found] == [(i, InstanceState.RUNNING) for i in ids]
    await provider.terminate(ids)
    assert await provider.describe(ids) == dict.fromkeys(ids, InstanceState.TERMINATED)
    assert cluster.pods("batch.kubernetes.io/job-name=skyd-31-1") == []


async def test_failing_setup_reports_its_code(provider: KubernetesProvider, tmp_path: Path) -> None:
    runner = KubernetesRunner(provider)
    ids = [i.instance_id for i in await provider.launch(request(offer_of(provider, 0), 32))]
    await until_states(provider, ids, RUNNING)
    attempt = tmp_path / "attempt"
    await runner.start(attempt, command(attempt, "echo never", setup="exit 4"), ids)
    status = await until_over(runner, attempt)
    assert (status.phase, status.setup_exit) == (RunPhase.DONE, 4)
    assert "never" not in (attempt / "job.log").read_text()
    await provider.terminate(ids)


async def test_eviction_preempts_the_whole_gang(
    provider: KubernetesProvider, cluster: FakeKubeServer, tmp_path: Path
) -> None:
    ids = [
        i.instance_id for i in await provider.launch(request(offer_of(provider, 2), 33, nodes=2))
    ]
    await until_states(provider, ids, RUNNING)
    runner = KubernetesRunner(provider)
    attempt = tmp_path / "attempt"
    await runner.start(attempt, command(attempt, "sleep 60"), ids)
    [first, _] = cluster.pods("batch.kubernetes.io/job-name=skyd-33-1")
    # through the real Eviction API, as a node drain does
    core = client.CoreV1Api(await provider.api(CONTEXT))
    await core.create_namespaced_pod_eviction(
        first["metadata"]["name"],
        "default",
        client.V1Eviction(metadata=client.V1ObjectMeta(name=first["metadata"]["name"])),
    )
    assert await provider.describe(ids) == dict.fromkeys(ids, InstanceState.PREEMPTED)
    # a poll of the attempt between the provider's look and the eviction must not read the
    # gang's end as the task's failure: the provider's PREEMPTED decides
    assert (await runner.status(attempt)).phase == RunPhase.RUN
    await provider.terminate(ids)


async def test_refusals_keep_the_api_servers_words(
    provider: KubernetesProvider, cluster: FakeKubeServer
) -> None:
    cluster.refuse_next_create(
        "Job",
        400,
        "BadRequest",
        'admission webhook "gpu-policy.lab" denied the request: GPU jobs need a project label',
    )
    with pytest.raises(AuthError, match=r"gpu-policy\.lab. denied the request") as caught:
        await provider.launch(request(offer_of(provider, 1), 34))
    assert caught.value.scope == f"kubernetes/{CONTEXT}"
    cluster.refuse_next_create("Job", 403, "Forbidden", "exceeded quota: gpu, requested: 1")
    with pytest.raises(QuotaError, match="exceeded quota"):
        await provider.launch(request(offer_of(provider, 1), 35))
    with pytest.raises(CapacityError, match="has 2 8cpu-64gb-A100x1 nodes; 3 asked"):
        await provider.launch(request(offer_of(provider, 1), 36, nodes=3))
    assert await provider.instances({TAG_DAEMON: "skyd-test"}) == []


async def test_fake_refuses_what_the_real_server_refuses(cluster: FakeKubeServer) -> None:
    url = f"http://127.0.0.1:{cluster.port}/apis/batch/v1/namespaces/default/jobs"
    headers = {"Authorization": f"Bearer {cluster.token}"}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{}]}}},
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=job, headers=headers) as answer:
            body = await answer.json()
        assert answer.status == 422 and body["reason"] == "Invalid"
        fields = {c["field"] for c in body["details"]["causes"]}
        assert fields == {
            "spec.template.spec.containers[0].name",
            "spec.template.spec.containers[0].image",
            "spec.template.spec.restartPolicy",
        }
        job["spec"]["paralelism"] = 2  # type: ignore[index]
        async with session.post(url, json=job, headers=headers) as answer:
            body = await answer.json()
        assert answer.status == 400
        assert body["message"] == 'strict decoding error: unknown field "spec.paralelism"'
        async with session.get(url) as answer:
            assert answer.status == 401


async def test_watch_streams_the_pods_changes(
    provider: KubernetesProvider, cluster: FakeKubeServer
) -> None:
    ids = [i.instance_id for i in await provider.launch(request(offer_of(provider, 0), 37))]
    core = client.CoreV1Api(await provider.api(CONTEXT))
    seen: list[tuple[str, str]] = []
    async with watch.Watch().stream(
        core.list_namespaced_pod,
        "default",
        label_selector="batch.kubernetes.io/job-name=skyd-37-1",
        timeout_seconds=10,
    ) as stream:
        async for event in stream:
            pod = event["object"]
            seen.append((event["type"], pod.status.phase))
            if pod.status.phase == "Running" and len(seen) == 1:
                cluster.evict("default", pod.metadata.name)  # a change to see next
            if pod.status.phase == "Failed":
                break
    assert seen[0][0] == "ADDED" and seen[-1] == ("MODIFIED", "Failed")
    conditions = {c.type for c in pod.status.conditions}
    assert "DisruptionTarget" in conditions
    await provider.terminate(ids)


async def test_reconcile_finds_skyds_jobs_by_label(
    provider: KubernetesProvider, tmp_path: Path
) -> None:
    offer = offer_of(provider, 0)
    [recorded] = await provider.launch(request(offer, 61, daemon="skyd-ours"))
    [orphan] = await provider.launch(request(offer, 62, daemon="skyd-ours"))
    [foreign] = await provider.launch(request(offer, 63, daemon="skyd-theirs"))
    report = await reconcile_after_restart(
        provider, recorded, tmp_path / "state", client_token="skyd-61-1", daemon_id="skyd-ours"
    )
    assert report.errors == {} and report.adopted == 1
    assert [(o.instance_id, o.action) for o in report.orphans] == [
        (orphan.instance_id, "terminated")
    ]
    states = await provider.describe(
        [recorded.instance_id, orphan.instance_id, foreign.instance_id]
    )
    assert states[orphan.instance_id] == InstanceState.TERMINATED
    assert states[recorded.instance_id] != InstanceState.TERMINATED
    assert states[foreign.instance_id] != InstanceState.TERMINATED
    await provider.terminate([recorded.instance_id, foreign.instance_id])


async def test_a_context_that_stops_answering_keeps_the_nodes_it_last_showed(
    cluster: FakeKubeServer,
) -> None:
    """Read again (the daemon's `offers_refresh_seconds`) while the API server is gone: the
    error is kept for `skyctl check`, and placement keeps the nodes it knew."""
    provider = await make_provider()
    try:
        known = list(provider.offers())
        assert known and provider.refresh_errors == {}
        await cluster.aclose()
        await provider.refresh()
        assert CONTEXT in provider.refresh_errors
        assert list(provider.offers()) == known
    finally:
        await provider.aclose()
