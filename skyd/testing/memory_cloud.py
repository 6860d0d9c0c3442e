"""An in-memory cloud that can stop and start instances, for cluster and autostop tests.

It keeps the Provider contract: idempotent launch by client token, describe by ids or tags
(a missing instance is TERMINATED), stop/start/terminate. Instances boot after
`boot_seconds` on the injected clock; `refuse` makes launches in a zone fail with a
CapacityError; `failing` makes the named operations ("describe", "stop", …) fail with a
TransientError; `calls` records what was asked of it, in order. It also plays the instances'
insides for autostop: `sessions` (open logins) and `gpu_load` (percent) per instance id, read
through the ActivityProbe and GpuProbe methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from skyd.clock import Clock
from skyd.errors import CapacityError, ProviderError, TransientError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer, dollars_to_micros
from skyd.store.records import InstanceRecord

MEMORY_CLOUD = "memcloud"


def memory_offers(zones: Sequence[str] = ("zone-a", "zone-b")) -> list[Offer]:
    """One 8-vCPU, 1-GPU offering per zone; the first zone is the cheapest."""
    return [
        Offer(
            cloud=MEMORY_CLOUD,
            region="region-1",
            zone=zone,
            instance_type="mem.gpu1",
            accelerator_name="T4",
            accelerator_count=1,
            vcpus=8.0,
            memory_gib=32.0,
            price_micros=dollars_to_micros("0.50") + index * dollars_to_micros("0.10"),
            spot_price_micros=None,
        )
        for index, zone in enumerate(zones)
    ]


@dataclass
class _Machine:
    instance: Instance
    boots_at: float


@dataclass
class MemoryCloud:
    clock: Clock
    boot_seconds: float = 0.0
    offerings: list[Offer] = field(default_factory=memory_offers)
    refuse: set[str] = field(default_factory=set)  # zones with no capacity
    failing: set[str] = field(default_factory=set)  # operations answering with a TransientError
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    sessions: dict[str, int] = field(default_factory=dict)
    gpu_load: dict[str, float] = field(default_factory=dict)
    name: str = MEMORY_CLOUD
    _machines: dict[str, _Machine] = field(default_factory=dict)

    def offers(self) -> Sequence[Offer]:
        return self.offerings

    def _maybe_fail(self, operation: str) -> None:
        if operation in self.failing:
            raise TransientError(f"{operation}: the cloud's API is throttling (injected)")

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        self.calls.append(("launch", (request.client_token,)))
        self._maybe_fail("launch")
        ids = [f"mem-{request.client_token}-{n}" for n in range(request.num_nodes)]
        if all(iid in self._machines for iid in ids):
            return [self._current(iid) for iid in ids]
        if request.offer.zone in self.refuse:
            raise CapacityError(
                f"no capacity in {request.offer.zone}",
                scope=f"{MEMORY_CLOUD}/{request.offer.region}/{request.offer.zone}",
            )
        now = self.clock.now()
        for iid in ids:
            self._machines[iid] = _Machine(
                Instance(
                    instance_id=iid,
                    provider=self.name,
                    cloud=MEMORY_CLOUD,
                    region=request.offer.region,
                    zone=request.offer.zone,
                    instance_type=request.offer.instance_type,
                    spot=request.spot,
                    state=InstanceState.PENDING,
                    tags=dict(request.tags),
                    private_ip="127.0.0.1",
                    launched_at=now,
                ),
                boots_at=now + self.boot_seconds,
            )
        return [self._current(iid) for iid in ids]

    def _current(self, instance_id: str) -> Instance:
        machine = self._machines[instance_id]
        state = machine.instance.state
        if state == InstanceState.PENDING and self.clock.now() >= machine.boots_at:
            state = InstanceState.RUNNING
            machine.instance = replace(machine.instance, state=state)
        return machine.instance

    def state_of(self, instance_id: str) -> InstanceState:
        if instance_id not in self._machines:
            return InstanceState.TERMINATED
        return self._current(instance_id).state

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        self._maybe_fail("describe")
        if instance_ids is not None:
            return {iid: self.state_of(iid) for iid in instance_ids}
        found = {}
        for iid in self._machines:
            inst = self._current(iid)
            if tags is None or all(inst.tags.get(k) == v for k, v in tags.items()):
                found[iid] = inst.state
        return found

    def _require(self, instance_id: str) -> _Machine:
        machine = self._machines.get(instance_id)
        if machine is None:
            raise ProviderError(f"no instance {instance_id}")
        return machine

    async def stop(self, instance_ids: Sequence[str]) -> None:
        self.calls.append(("stop", tuple(instance_ids)))
        self._maybe_fail("stop")
        for iid in instance_ids:
            machine = self._require(iid)
            machine.instance = replace(machine.instance, state=InstanceState.STOPPED)

    async def start(self, instance_ids: Sequence[str]) -> None:
        self.calls.append(("start", tuple(instance_ids)))
        self._maybe_fail("start")
        for iid in instance_ids:
            machine = self._require(iid)
            machine.instance = replace(machine.instance, state=InstanceState.PENDING)
            machine.boots_at = self.clock.now() + self.boot_seconds

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        self.calls.append(("terminate", tuple(instance_ids)))
        self._maybe_fail("terminate")
        for iid in instance_ids:
            self._machines.pop(iid, None)

    def preempt(self, instance_id: str) -> None:
        """The cloud takes the instance away (it is reported TERMINATED from now on)."""
        self._machines.pop(instance_id, None)

    async def active_sessions(self, instance: InstanceRecord) -> int:
        return self.sessions.get(instance.instance_id, 0)

    async def utilization(self, instance: InstanceRecord) -> float | None:
        return self.gpu_load.get(instance.instance_id)

    async def aclose(self) -> None:
        return None
