"""The provider contract for the GCP adapter, against the local Compute Engine fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from skyd.errors import (
    AuthError,
    CapacityError,
    ProviderError,
    QuotaError,
    RequestRefusedError,
    TransientError,
    UnknownProviderError,
)
from skyd.model import InstanceState, Offer
from skyd.providers.gcp import GcpConfig, GcpProvider
from skyd.providers.gcp.errors import translate_operation_errors
from skyd.providers.gcp.labels import label_filter, label_key, label_value
from skyd.providers.gcp.provider import split_instance_key
from skyd.testing.fake_gce import FakeGce, GceFault
from tests.providers.contract import Fault, ProviderContract, request_for, until_state

PROJECT = "skyd-lab"
ZONE = "us-central1-a"


def _fault(fault: Fault) -> GceFault:
    return {
        Fault.CAPACITY: GceFault(
            "insert", operation_error="ZONE_RESOURCE_POOL_EXHAUSTED", zone=ZONE
        ),
        Fault.QUOTA: GceFault(
            "insert",
            operation_error="QUOTA_EXCEEDED",
            message="Quota 'CPUS' exceeded. Limit: 8.0 in region us-central1.",
        ),
        Fault.AUTH: GceFault("insert", status=403, reason="forbidden"),
        Fault.THROTTLE: GceFault("insert", status=429, reason="rateLimitExceeded"),
        Fault.SERVER_ERROR: GceFault("insert", status=503, reason="backendError"),
        Fault.TIMEOUT: GceFault("insert", hang=True),
    }[fault]


class GcpHarness:
    def __init__(self, provider: GcpProvider, fake: FakeGce) -> None:
        self.provider = provider
        self.fake = fake

    def offer(self, spot: bool) -> Offer:
        return Offer("gcp", "us-central1", ZONE, "n2-standard-8", "", 0, 2, 8, 97_100, 23_500)

    sdk_retries = True

    def inject(self, fault: Fault, offer: Offer, persistent: bool = False) -> None:
        injected = self.fake.add_fault(_fault(fault))
        if persistent:
            injected.times = None

    def clear_faults(self) -> None:
        self.fake.faults.clear()

    async def preempt(self, instance_id: str) -> None:
        zone, name = split_instance_key(instance_id)
        self.fake.preempt(PROJECT, zone, name)

    async def leftovers(self) -> list[str]:
        instances = [f"{zone}/{name}" for (_, zone, name) in self.fake.instances]
        # a gang's compact placement policy must go with it too
        return instances + [f"policy:{name}" for (*_, name) in self.fake.policies.policies]

    def create_calls(self) -> int:
        return self.fake.calls["insert"]


@pytest.fixture
async def fake_gce() -> AsyncIterator[FakeGce]:
    fake = FakeGce()
    await fake.start()
    yield fake
    await fake.stop()


def _provider(fake: FakeGce, **overrides: object) -> GcpProvider:
    settings: dict[str, object] = {
        "project": PROJECT,
        "endpoint": fake.endpoint,
        "anonymous": True,
        "request_timeout_s": 2.0,
        "retry_deadline_s": 3.0,
        "retry_initial_s": 0.1,
        "ssh_public_key": "ssh-ed25519 AAAA skyd-test",
    }
    settings.update(overrides)
    return GcpProvider(GcpConfig(**settings))  # type: ignore[arg-type]


@pytest.fixture
async def harness(fake_gce: FakeGce) -> AsyncIterator[GcpHarness]:
    provider = _provider(fake_gce)
    yield GcpHarness(provider, fake_gce)
    await provider.aclose()


class TestGcpContract(ProviderContract):
    pass


async def test_spot_insert_carries_scheduling_labels_and_request_id(harness: GcpHarness) -> None:
    launched = await harness.provider.launch(
        request_for(harness.offer(spot=True), spot=True, job_id=31, token="Job31-Attempt1")
    )
    raw = harness.fake.instances[(PROJECT, ZONE, split_instance_key(launched[0].instance_id)[1])]
    assert raw["scheduling"]["provisioningModel"] == "SPOT"
    assert raw["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert raw["labels"]["skyd-token"] == "job31-attempt1"  # GCE labels are lowercase
    assert raw["labels"]["skyd-cluster"] == "c31"
    assert raw["metadata"]["items"][0]["value"] == "skyd:ssh-ed25519 AAAA skyd-test"
    assert harness.fake.calls["operations.wait"] >= 1
    assert launched[0].public_ip is not None and launched[0].private_ip is not None
    await harness.provider.terminate([launched[0].instance_id])


async def test_instance_walks_provisioning_staging_running(harness: GcpHarness) -> None:
    launched = await harness.provider.launch(request_for(harness.offer(spot=False), spot=False))
    key = launched[0].instance_id
    seen = [launched[0].state]
    for _ in range(3):
        seen.append((await harness.provider.describe([key]))[key])
    assert seen[0] == InstanceState.PENDING
    assert seen[-1] == InstanceState.RUNNING
    await harness.provider.terminate([key])


async def test_stopped_spot_instance_preempted_with_stop_action(fake_gce: FakeGce) -> None:
    provider = _provider(fake_gce, spot_termination_action="STOP")
    try:
        launched = await provider.launch(
            request_for(
                Offer("gcp", "us-central1", ZONE, "n2-standard-8", "", 0, 2, 8, 1, 1),
                spot=True,
                job_id=32,
            )
        )
        key = launched[0].instance_id
        await until_state(provider, [key], InstanceState.RUNNING)
        fake_gce.preempt(PROJECT, *split_instance_key(key))
        assert await provider.describe(tags={"skyd-job": "32"}) == {key: InstanceState.PREEMPTED}
        # Started again by the user afterwards: no longer preempted.
        await provider.start([key])
        await until_state(provider, [key], InstanceState.RUNNING)
        await provider.stop([key])
        assert await provider.describe([key]) == {key: InstanceState.STOPPED}
        await provider.terminate([key])
    finally:
        await provider.aclose()


async def test_half_launched_gang_is_rolled_back(harness: GcpHarness) -> None:
    harness.fake.add_fault(GceFault("insert", operation_error="ZONE_RESOURCE_POOL_EXHAUSTED"))
    with pytest.raises(CapacityError):
        await harness.provider.launch(
            request_for(harness.offer(spot=False), spot=False, num_nodes=3)
        )
    assert await harness.leftovers() == []


async def test_global_gpu_quota_blocks_the_cloud(harness: GcpHarness) -> None:
    harness.fake.add_fault(
        GceFault(
            "insert",
            operation_error="QUOTA_EXCEEDED",
            message="Quota 'GPUS_ALL_REGIONS' exceeded. Limit: 0.0 globally.",
        )
    )
    with pytest.raises(QuotaError) as caught:
        await harness.provider.launch(request_for(harness.offer(spot=False), spot=False))
    assert caught.value.scope == "gcp"


async def test_describe_and_list_faults_are_transient_or_auth(harness: GcpHarness) -> None:
    harness.fake.add_fault(
        GceFault("aggregatedList", status=503, reason="backendError", times=None)
    )
    with pytest.raises(TransientError):
        await harness.provider.describe(tags={"skyd-job": "1"})
    harness.fake.add_fault(GceFault("get", status=401, reason="authError"))
    with pytest.raises(AuthError):
        await harness.provider.describe([f"{ZONE}/skyd-1-x-0"])


@pytest.mark.parametrize(
    ("code", "kind", "scope"),
    [
        (
            "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
            CapacityError,
            "gcp/europe-west4/europe-west4-b",
        ),
        ("QUOTA_EXCEEDED", QuotaError, "gcp/europe-west4"),
        ("INVALID_FIELD_VALUE", RequestRefusedError, "gcp/europe-west4"),
        ("SOMETHING_NEW", UnknownProviderError, "gcp/europe-west4"),
    ],
)
def test_operation_error_table(code: str, kind: type[ProviderError], scope: str) -> None:
    error = translate_operation_errors([(code, "m")], "europe-west4-b")
    assert type(error) is kind
    assert error.scope == scope


def test_labels_follow_gce_rules() -> None:
    assert label_key("Skyd.Job") == "skyd-job"
    assert label_key("9lives") == "k9lives"
    assert label_value("A" * 80) == "a" * 63
    assert label_filter({"skyd-job": "7"}) == '(labels.skyd-job = "7")'


def test_config_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"gcp\.project"):
        GcpConfig(project="")
    with pytest.raises(ValueError, match="spot_termination_action"):
        GcpConfig(project="p", spot_termination_action="KEEP")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "kind", "scope"),
    [
        ("quotaExceeded", QuotaError, "gcp/us-central1"),
        ("rateLimitExceeded", TransientError, "gcp/us-central1"),
        ("forbidden", AuthError, "gcp"),
    ],
)
async def test_http_403_is_read_by_its_reason(
    harness: GcpHarness, reason: str, kind: type[ProviderError], scope: str
) -> None:
    # Persistent: a one-off rateLimitExceeded is retried away by api-core's Retry.
    harness.fake.add_fault(GceFault("insert", status=403, reason=reason, times=None))
    with pytest.raises(kind) as caught:
        await harness.provider.launch(request_for(harness.offer(spot=False), spot=False))
    assert caught.value.scope == scope


async def test_insert_that_acted_but_timed_out_is_not_doubled(harness: GcpHarness) -> None:
    harness.fake.add_fault(GceFault("insert", hang=True, after_effect=True))
    request = request_for(harness.offer(spot=False), spot=False, num_nodes=2)
    # api-core's Retry resends the insert with the same requestId: GCE answers with the
    # first operation instead of creating the instance again.
    launched = await harness.provider.launch(request)
    assert len(launched) == 2 and len(harness.fake.instances) == 2
    assert harness.fake.calls["insert"] == 3
    await harness.provider.terminate([i.instance_id for i in launched])
    assert await harness.leftovers() == []
