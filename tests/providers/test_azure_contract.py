"""The provider contract for the Azure adapter, against the local HTTPS Resource Manager fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyd.clock import VirtualClock
from skyd.errors import (
    CapacityError,
    ProviderError,
    QuotaError,
    RequestRefusedError,
    TransientError,
    UnknownProviderError,
)
from skyd.model import InstanceState, Offer
from skyd.providers.azure import AzureConfig, AzureProvider
from skyd.providers.azure.errors import translate_error_code
from skyd.providers.azure.provider import split_instance_key
from skyd.providers.base import MANAGED, TAG_MANAGED
from skyd.testing.fake_azure import ArmFault, FakeAzure, StaticTokenCredential
from tests.providers.contract import Fault, ProviderContract, request_for, until_state

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
GROUP = "skyd-lab"

_FAULTS = {
    Fault.CAPACITY: ArmFault("vm.put", async_error="AllocationFailed"),
    Fault.QUOTA: ArmFault(
        "vm.put",
        status=409,
        code="OperationNotAllowed",
        message="Operation could not be completed as it results in exceeding approved "
        "standardDSv5Family Cores quota.",
    ),
    Fault.AUTH: ArmFault("vm.put", status=403, code="AuthorizationFailed"),
    Fault.THROTTLE: ArmFault("vm.put", status=429, code="TooManyRequests", retry_after=1),
    Fault.SERVER_ERROR: ArmFault("vm.put", status=503, code="ServiceUnavailable"),
    Fault.TIMEOUT: ArmFault("vm.put", hang=True),
}


class AzureHarness:
    def __init__(self, provider: AzureProvider, fake: FakeAzure) -> None:
        self.provider = provider
        self.fake = fake

    def offer(self, spot: bool) -> Offer:
        return Offer("azure", "eastus", "", "Standard_D2s_v5", "", 0, 2, 8, 96_000, 19_000)

    sdk_retries = True

    def clear_faults(self) -> None:
        self.fake.faults.clear()

    def inject(self, fault: Fault, offer: Offer, persistent: bool = False) -> None:
        template = _FAULTS[fault]
        self.fake.add_fault(
            ArmFault(
                template.operation,
                status=template.status,
                code=template.code,
                async_error=template.async_error,
                message=template.message,
                retry_after=template.retry_after,
                hang=template.hang,
                times=None if persistent else 1,
            )
        )

    async def preempt(self, instance_id: str) -> None:
        self.fake.evict(*split_instance_key(instance_id))

    async def leftovers(self) -> list[str]:
        tables = {
            "vm": self.fake.vms,
            "nic": self.fake.nics,
            "ip": self.fake.ips,
            "nsg": self.fake.nsgs,
            "ppg": self.fake.placement.groups,  # a gang's proximity placement group
        }
        return [
            f"{kind}:{name}"
            for kind, table in tables.items()
            for (_, name), resource in table.items()
            if resource.get("tags", {}).get(TAG_MANAGED) == MANAGED
        ]

    def create_calls(self) -> int:
        return self.fake.calls["vm.put"]


@pytest.fixture
async def fake_azure(tmp_path: Path) -> AsyncIterator[FakeAzure]:
    fake = FakeAzure(tmp_path)
    await fake.start()
    yield fake
    await fake.stop()


def _config(fake: FakeAzure, **overrides: object) -> AzureConfig:
    settings: dict[str, object] = {
        "subscription_id": SUBSCRIPTION,
        "resource_group": GROUP,
        "base_url": fake.base_url,
        "ca_file": str(fake.ca_file),
        "ssh_public_key": "ssh-ed25519 AAAA skyd-test",
        "request_timeout_s": 3.0,
        "poll_interval_s": 0,
        "retry_total": 2,
        "retry_backoff_factor": 0.05,
    }
    settings.update(overrides)
    return AzureConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def harness(fake_azure: FakeAzure) -> AsyncIterator[AzureHarness]:
    provider = AzureProvider(
        _config(fake_azure), credential=StaticTokenCredential(), clock=VirtualClock()
    )
    yield AzureHarness(provider, fake_azure)
    await provider.aclose()


class TestAzureContract(ProviderContract):
    pass


async def test_spot_vm_body_and_network_resources(harness: AzureHarness) -> None:
    launched = await harness.provider.launch(
        request_for(harness.offer(spot=True), spot=True, job_id=41)
    )
    name = split_instance_key(launched[0].instance_id)[1]
    vm = harness.fake.vms[(GROUP, name)]
    assert vm["properties"]["priority"] == "Spot"
    assert vm["properties"]["evictionPolicy"] == "Deallocate"
    assert vm["properties"]["billingProfile"] == {"maxPrice": -1.0}
    assert (GROUP, f"{name}-nic") in harness.fake.nics
    assert (GROUP, f"{name}-ip") in harness.fake.ips
    assert launched[0].public_ip is not None and launched[0].private_ip is not None
    # Every create and delete went through Azure-AsyncOperation polling.
    assert harness.fake.calls["operation.get"] >= 6
    await harness.provider.terminate([launched[0].instance_id])
    assert await harness.leftovers() == []


async def test_user_stop_of_spot_vm_is_not_an_eviction(harness: AzureHarness) -> None:
    launched = await harness.provider.launch(
        request_for(harness.offer(spot=True), spot=True, job_id=42)
    )
    key = launched[0].instance_id
    await until_state(harness.provider, [key], InstanceState.RUNNING)
    await harness.provider.stop([key])
    assert await harness.provider.describe([key]) == {key: InstanceState.STOPPED}
    await harness.provider.start([key])
    await until_state(harness.provider, [key], InstanceState.RUNNING)
    harness.fake.evict(*split_instance_key(key))
    assert await harness.provider.describe([key]) == {key: InstanceState.PREEMPTED}
    await harness.provider.terminate([key])
    assert await harness.leftovers() == []


async def test_eviction_with_delete_policy_leaves_network_to_terminate(
    fake_azure: FakeAzure,
) -> None:
    provider = AzureProvider(
        _config(fake_azure, eviction_policy="Delete"),
        credential=StaticTokenCredential(),
        clock=VirtualClock(),
    )
    try:
        launched = await provider.launch(
            request_for(Offer("azure", "westus2", "2", "Standard_D2s_v5", "", 0, 2, 8, 1, 1), True)
        )
        key = launched[0].instance_id
        assert launched[0].zone == "2"
        fake_azure.evict(*split_instance_key(key))
        assert await provider.describe([key]) == {key: InstanceState.TERMINATED}
        assert fake_azure.nics and fake_azure.ips
        await provider.terminate([key])
        assert not fake_azure.nics and not fake_azure.ips
    finally:
        await provider.aclose()


async def test_zonal_capacity_blocks_the_zone(harness: AzureHarness) -> None:
    offer = Offer("azure", "westus2", "3", "Standard_NC6s_v3", "V100", 1, 6, 112, 1, 1)
    harness.fake.add_fault(ArmFault("vm.put", status=409, code="ZonalAllocationFailed"))
    with pytest.raises(CapacityError) as caught:
        await harness.provider.launch(request_for(offer, spot=False))
    assert caught.value.scope == "azure/westus2/3"
    assert await harness.leftovers() == []


async def test_throttle_carries_retry_after(harness: AzureHarness) -> None:
    harness.inject(Fault.THROTTLE, harness.offer(spot=False), persistent=True)
    with pytest.raises(TransientError) as caught:
        await harness.provider.launch(request_for(harness.offer(spot=False), spot=False))
    assert caught.value.retry_after == 1
    # azure-core's RetryPolicy tried twice more, each after the Retry-After the fake sent.
    assert harness.fake.calls["vm.put"] == 3


async def test_missing_bearer_token_is_refused_by_the_fake(fake_azure: FakeAzure) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        url = f"{fake_azure.base_url}/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
        async with session.get(
            url + "/providers/Microsoft.Compute/virtualMachines", ssl=False
        ) as response:
            assert response.status == 401


@pytest.mark.parametrize(
    ("code", "status", "message", "kind", "scope"),
    [
        ("SkuNotAvailable", 409, "", CapacityError, "azure/eastus//D2"),
        ("OverconstrainedAllocationRequest", 200, "", CapacityError, "azure/eastus//D2"),
        ("QuotaExceeded", 409, "", QuotaError, "azure/eastus"),
        ("OperationNotAllowed", 409, "not in this state", RequestRefusedError, "azure/eastus"),
        ("InvalidRequestContent", 400, "", RequestRefusedError, "azure/eastus"),
        ("SomethingNew", 400, "", UnknownProviderError, "azure/eastus"),
        ("AuthenticationFailed", 401, "", ProviderError, "azure"),
        ("InternalServerError", 500, "", TransientError, "azure/eastus"),
    ],
)
def test_error_code_table(
    code: str, status: int, message: str, kind: type[ProviderError], scope: str
) -> None:
    error = translate_error_code(code, status, message, "eastus", "azure/eastus//D2")
    assert isinstance(error, kind)
    if kind is ProviderError and status < 400:
        assert type(error) is ProviderError
    assert error.scope == scope


def test_config_requires_https_and_names_fields() -> None:
    with pytest.raises(ValueError, match="https"):
        AzureConfig(subscription_id="s", resource_group="g", base_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="resource_group"):
        AzureConfig(subscription_id="s", resource_group="")
