"""The provider contract: one suite every adapter must pass, each against its own fake."""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pytest

from skyd.errors import AuthError, CapacityError, ProviderError, QuotaError, TransientError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.base import (
    MANAGED,
    TAG_CLUSTER,
    TAG_JOB,
    TAG_MANAGED,
    TAG_TOKEN,
    Provider,
    job_tags,
)
from skyd.store import instances as instance_store
from skyd.store import open_store
from skyd.testing.restarts import reconcile_after_restart

# Fakes move an instance one step per observation; this bounds how many it may take.
MAX_OBSERVATIONS = 20
_tokens = itertools.count(1)


class Fault(enum.Enum):
    CAPACITY = "capacity"
    QUOTA = "quota"
    AUTH = "auth"
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"


class ContractHarness(Protocol):
    """What a provider's test module hands the contract: the adapter and its fake's knobs.

    A provider without a given knob (the local provider has no quota, say) calls
    pytest.skip() from `inject` or `preempt` with the reason, rather than faking a pass.
    """

    provider: Provider
    # Whether the adapter retries transient faults itself (its SDK's one retry mechanism).
    sdk_retries: bool

    def offer(self, spot: bool) -> Offer:
        """An offering the fake can launch."""
        ...

    def inject(self, fault: Fault, offer: Offer, persistent: bool = False) -> None:
        """Make the next launch into `offer`'s zone fail with `fault` (every call until
        clear_faults() when `persistent`)."""
        ...

    def clear_faults(self) -> None: ...

    async def preempt(self, instance_id: str) -> None:
        """Take a running spot instance back, as the cloud would."""
        ...

    async def leftovers(self) -> list[str]:
        """Resources carrying skyd tags that still exist: live instances, groups, NICs, IPs…"""
        ...

    def create_calls(self) -> int:
        """How many instance-creating API calls the fake has answered so far."""
        ...


def capacity_scope(offer: Offer) -> str:
    # Zoneless catalogs (Azure) can only block the offering itself, not a zone.
    return f"{offer.cloud}/{offer.region}/{offer.zone}" if offer.zone else offer.key


def request_for(
    offer: Offer, spot: bool, num_nodes: int = 1, token: str | None = None, job_id: int = 7
) -> LaunchRequest:
    token = token or f"job{job_id}-attempt{next(_tokens)}"
    return LaunchRequest(
        job_id=job_id,
        attempt=1,
        client_token=token,
        offer=offer,
        spot=spot,
        num_nodes=num_nodes,
        tags={TAG_CLUSTER: f"c{job_id}"},
    )


async def until_state(
    provider: Provider, instance_ids: Sequence[str], want: InstanceState
) -> dict[str, InstanceState]:
    states: dict[str, InstanceState] = {}
    for _ in range(MAX_OBSERVATIONS):
        states = await provider.describe(instance_ids)
        if all(states.get(i) == want for i in instance_ids):
            return states
        await asyncio.sleep(0)
    raise AssertionError(f"expected {want} for {list(instance_ids)}, last seen {states}")


def ids(instances: Sequence[Instance]) -> list[str]:
    return [inst.instance_id for inst in instances]


class ProviderContract:
    """Subclass in tests/providers/test_<name>_contract.py and provide a `harness` fixture.

    Joining the suite is two lines plus the harness:

        class TestLocalContract(ProviderContract):
            pass
    """

    async def test_full_lifecycle_leaves_nothing_behind(self, harness: ContractHarness) -> None:
        provider = harness.provider
        assert isinstance(provider, Provider)
        offer = harness.offer(spot=False)
        launched = await provider.launch(request_for(offer, spot=False, job_id=11))
        assert len(launched) == 1
        inst = launched[0]
        assert inst.provider == provider.name
        assert (inst.cloud, inst.region, inst.instance_type) == (
            offer.cloud,
            offer.region,
            offer.instance_type,
        )
        assert not inst.spot
        assert inst.tags[TAG_MANAGED] == MANAGED
        assert inst.tags[TAG_JOB] == "11"
        await until_state(provider, ids(launched), InstanceState.RUNNING)

        by_tag = await provider.describe(tags={TAG_JOB: "11"})
        assert by_tag == {inst.instance_id: InstanceState.RUNNING}
        assert await provider.describe(tags={TAG_JOB: "999"}) == {}
        # No filter at all means everything skyd manages (what reconcile asks for).
        assert inst.instance_id in await provider.describe()

        await provider.stop(ids(launched))
        await until_state(provider, ids(launched), InstanceState.STOPPED)
        await provider.start(ids(launched))
        await until_state(provider, ids(launched), InstanceState.RUNNING)
        await provider.terminate(ids(launched))
        await until_state(provider, ids(launched), InstanceState.TERMINATED)
        assert await harness.leftovers() == []

    async def test_same_client_token_never_launches_twice(self, harness: ContractHarness) -> None:
        provider = harness.provider
        request = request_for(harness.offer(spot=False), spot=False, job_id=12)
        first = await provider.launch(request)
        calls = harness.create_calls()
        # A crash between launch and record: the core retries with the same token.
        second = await provider.launch(request)
        assert ids(second) == ids(first)
        assert harness.create_calls() == calls
        assert list(await provider.describe(tags={TAG_TOKEN: request.client_token})) == ids(first)
        await provider.terminate(ids(first))
        assert await harness.leftovers() == []

    async def test_spot_launch_is_spot(self, harness: ContractHarness) -> None:
        provider = harness.provider
        launched = await provider.launch(request_for(harness.offer(spot=True), spot=True))
        assert [i.spot for i in launched] == [True]
        await until_state(provider, ids(launched), InstanceState.RUNNING)
        await provider.terminate(ids(launched))
        assert await harness.leftovers() == []

    async def test_multi_node_launch(self, harness: ContractHarness) -> None:
        provider = harness.provider
        launched = await provider.launch(
            request_for(harness.offer(spot=False), spot=False, num_nodes=2, job_id=13)
        )
        assert len(set(ids(launched))) == 2
        await until_state(provider, ids(launched), InstanceState.RUNNING)
        assert set(await provider.describe(tags={TAG_JOB: "13"})) == set(ids(launched))
        await provider.terminate(ids(launched))
        await until_state(provider, ids(launched), InstanceState.TERMINATED)
        assert await harness.leftovers() == []

    async def test_preempted_spot_instance_is_reported(self, harness: ContractHarness) -> None:
        provider = harness.provider
        launched = await provider.launch(
            request_for(harness.offer(spot=True), spot=True, job_id=14)
        )
        await until_state(provider, ids(launched), InstanceState.RUNNING)
        await harness.preempt(launched[0].instance_id)
        assert await provider.describe(ids(launched)) == {
            launched[0].instance_id: InstanceState.PREEMPTED
        }
        assert await provider.describe(tags={TAG_JOB: "14"}) in (
            {launched[0].instance_id: InstanceState.PREEMPTED},
            {},  # clouds that delete preempted instances no longer list them
        )
        await provider.terminate(ids(launched))
        assert await harness.leftovers() == []

    @pytest.mark.parametrize(
        ("fault", "error"),
        [(Fault.CAPACITY, CapacityError), (Fault.QUOTA, QuotaError), (Fault.AUTH, AuthError)],
    )
    async def test_fault_maps_to_error_and_scope(
        self, harness: ContractHarness, fault: Fault, error: type[ProviderError]
    ) -> None:
        provider = harness.provider
        spot = fault is Fault.CAPACITY
        offer = harness.offer(spot=spot)
        request = request_for(offer, spot=spot, job_id=15)
        # Persistent, as capacity, quota and credentials are (EC2 even answers a stockout
        # with HTTP 500, which botocore retries).
        harness.inject(fault, offer, persistent=True)
        with pytest.raises(error) as caught:
            await provider.launch(request)
        expected_scope = {
            Fault.CAPACITY: capacity_scope(offer),
            Fault.QUOTA: f"{offer.cloud}/{offer.region}",
            Fault.AUTH: offer.cloud,
        }[fault]
        assert caught.value.scope == expected_scope
        assert await provider.describe(tags={TAG_JOB: "15"}) == {}
        assert await harness.leftovers() == []
        # Once it has passed, the retry with the same token launches exactly once.
        harness.clear_faults()
        launched = await provider.launch(request)
        assert len(launched) == 1
        assert list(await provider.describe(tags={TAG_JOB: "15"})) == ids(launched)
        await provider.terminate(ids(launched))
        assert await harness.leftovers() == []

    @pytest.mark.parametrize("fault", [Fault.THROTTLE, Fault.SERVER_ERROR, Fault.TIMEOUT])
    async def test_transient_fault_has_one_retry_mechanism(
        self, harness: ContractHarness, fault: Fault
    ) -> None:
        """Cloud adapters retry inside their SDK (botocore adaptive, api-core Retry, azure-core
        RetryPolicy): a passing fault costs one more create call and launches exactly once.
        Adapters without one surface it as TransientError for the core's backoff."""
        provider = harness.provider
        offer = harness.offer(spot=False)
        request = request_for(offer, spot=False, job_id=16)
        before = harness.create_calls()
        harness.inject(fault, offer)
        if harness.sdk_retries:
            launched = await provider.launch(request)
            assert harness.create_calls() - before == 2
        else:
            with pytest.raises(TransientError):
                await provider.launch(request)
            assert await provider.describe(tags={TAG_JOB: "16"}) == {}
            launched = await provider.launch(request)
        assert len(launched) == 1
        assert list(await provider.describe(tags={TAG_JOB: "16"})) == ids(launched)
        await provider.terminate(ids(launched))
        assert await harness.leftovers() == []

    async def test_persistent_throttle_surfaces_as_transient(
        self, harness: ContractHarness
    ) -> None:
        provider = harness.provider
        offer = harness.offer(spot=False)
        harness.inject(Fault.THROTTLE, offer, persistent=True)
        with pytest.raises(TransientError):
            await provider.launch(request_for(offer, spot=False, job_id=17))
        harness.clear_faults()
        assert await provider.describe(tags={TAG_JOB: "17"}) == {}
        assert await harness.leftovers() == []

    async def test_unknown_instance_is_terminated(self, harness: ContractHarness) -> None:
        provider = harness.provider
        launched = await provider.launch(request_for(harness.offer(spot=False), spot=False))
        await provider.terminate(ids(launched))
        # Terminating twice is harmless: a reconcile may race a user's `down`.
        await provider.terminate(ids(launched))
        assert await provider.describe(ids(launched)) == {
            launched[0].instance_id: InstanceState.TERMINATED
        }

    async def test_reconcile_finds_what_the_scheduler_launched(
        self, harness: ContractHarness, tmp_path: Path
    ) -> None:
        """Launched with the scheduler's own tags: reconcile keeps the recorded instance,
        terminates the unrecorded one, and leaves another daemon's alone."""
        provider = harness.provider
        offer = harness.offer(spot=False)

        async def launch(daemon: str, job: int) -> Instance:
            token = f"skyd-{job}-1"
            request = LaunchRequest(
                job, 1, token, offer, False, tags=job_tags(daemon, job, 1, token)
            )
            [inst] = await provider.launch(request)
            return inst

        recorded = await launch("skyd-ours", 21)
        orphan = await launch("skyd-ours", 22)
        foreign = await launch("skyd-theirs", 23)
        await until_state(provider, [recorded.instance_id], InstanceState.RUNNING)
        report = await reconcile_after_restart(
            provider,
            recorded,
            tmp_path,
            client_token="skyd-21-1",
            daemon_id="skyd-ours",
            hourly_price_micros=1,
        )
        assert report.errors == {}
        assert report.gone == 0 and report.adopted == 1
        assert [(o.instance_id, o.action) for o in report.orphans] == [
            (orphan.instance_id, "terminated")
        ]
        store = open_store(tmp_path)
        try:
            [row] = instance_store.active_instances(store, provider.name)
            assert (row.instance_id, row.state) == (recorded.instance_id, "RUNNING")
        finally:
            store.close()
        states = await provider.describe([recorded.instance_id, orphan.instance_id])
        assert states[recorded.instance_id] == InstanceState.RUNNING
        assert states[orphan.instance_id] in (InstanceState.TERMINATING, InstanceState.TERMINATED)
        assert (await provider.describe([foreign.instance_id]))[foreign.instance_id] in (
            InstanceState.PENDING,
            InstanceState.RUNNING,
        )
        await provider.terminate([recorded.instance_id, foreign.instance_id])
        assert await harness.leftovers() == []
