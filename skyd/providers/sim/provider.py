"""A simulated cloud whose spot market follows a recorded trace on the daemon's clock.

Each trace zone is one accelerator offering (spot and on-demand), plus the CPU-only instance
types of the catalog's cloud in that zone's region (on-demand, at the catalog's price: the
trace says nothing about their spot capacity), so a CPU job is not put on the trace's GPU.
A spot instance cannot be launched
while the trace says the zone has no capacity, and is preempted as soon as the trace
withdraws it; every instance becomes RUNNING after a configurable provisioning delay.
The job itself runs as local processes (the same runner as the `local` provider), so the
simulation exercises the real scheduler, runner and recovery code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from skyd.clock import Clock
from skyd.errors import CapacityError, ProviderError
from skyd.market.replay import TraceReplay
from skyd.model import Instance, InstanceState, LaunchRequest, Offer, dollars_to_micros
from skyd.store.market import Observation

SIM_CLOUD = "sim"


class SimProvider:
    name = SIM_CLOUD

    def __init__(
        self,
        replay: TraceReplay,
        clock: Clock,
        state_dir: Path,
        *,
        provisioning_delay_seconds: float = 1.0,
        vcpus: float = 8.0,
        memory_gib: float = 61.0,
        cpu_offers: Sequence[Offer] = (),
    ) -> None:
        self.replay = replay
        self._clock = clock
        self._dir = state_dir
        self._dir.mkdir(parents=True, exist_ok=True)
        self.provisioning_delay_seconds = provisioning_delay_seconds
        traces = replay.traces
        name, _, count = traces.accelerator.partition(":")
        self._offers = [
            Offer(
                cloud=SIM_CLOUD,
                region=replay.region(zone),
                zone=zone,
                instance_type=traces.instance_type,
                accelerator_name=name,
                accelerator_count=int(count or 1),
                vcpus=vcpus,
                memory_gib=memory_gib,
                price_micros=dollars_to_micros(str(replay.on_demand_price(zone))),
                spot_price_micros=dollars_to_micros(f"{replay.spot_price(zone):.6f}"),
            )
            for zone in replay.zones
        ]
        self._by_zone = {offer.zone: offer for offer in self._offers}
        self._offers += [o for o in cpu_offers if o.cloud == SIM_CLOUD and o.zone in self._by_zone]
        self._by_key = {offer.key: offer for offer in self._offers}

    # -- the market side --------------------------------------------------------------

    def offers(self) -> Sequence[Offer]:
        return self._offers

    def observations(self) -> list[Observation]:
        """Each zone's spot price and availability now, as market observations."""
        now = self._clock.now()
        found = []
        for zone, offer in self._by_zone.items():
            found.append(
                Observation(
                    scope=offer.key,
                    at=now,
                    source="sim-trace",
                    spot_price_micros=dollars_to_micros(f"{self.replay.spot_price(zone):.6f}"),
                    available=self.replay.available(zone),
                )
            )
        return found

    @property
    def availability_step_seconds(self) -> float:
        """Clock seconds between the trace's probes (its spot availability history's grid)."""
        return self.replay.tick_clock_seconds

    def availability_since(self, since: float) -> list[tuple[str, float, bool]]:
        """The trace's spot availability change points since `since` (its recorded past,
        which a daemon started mid-trace has not watched), by offer key."""
        return [
            (offer.key, at, available)
            for zone, offer in self._by_zone.items()
            for at, available in self.replay.availability_rows(zone, since)
        ]

    async def watch(self, on_change: Callable[[list[Observation]], None]) -> None:
        """Report every trace change as it happens (preemptions are seen at once)."""
        on_change(self.observations())
        async for _change in self.replay.changes():
            on_change(self.observations())

    # -- instances --------------------------------------------------------------------

    def _path(self, instance_id: str) -> Path:
        return self._dir / f"{instance_id}.json"

    def _read(self, instance_id: str) -> dict[str, object] | None:
        try:
            data: dict[str, object] = json.loads(self._path(instance_id).read_text())
        except FileNotFoundError:
            return None
        return data

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        offer = self._by_key.get(request.offer.key)
        if offer is None or request.offer.cloud != SIM_CLOUD:
            raise ProviderError(
                f"the sim cloud has no {request.offer.instance_type!r} in zone"
                f" {request.offer.zone!r}"
            )
        if request.spot and offer.spot_price_micros is None:
            raise ProviderError(f"the sim cloud sells {offer.instance_type} on demand only")
        nodes = max(1, request.num_nodes)
        # one id per node (`sim-TOKEN` alone for a one-node job, as before gangs); a retry
        # with the same token finds the records it wrote
        ids = [
            f"sim-{request.client_token}" if nodes == 1 else f"sim-{request.client_token}-{rank}"
            for rank in range(nodes)
        ]
        records = {iid: self._read(iid) for iid in ids}
        if any(r is None for r in records.values()):
            # the zone's capacity is all or nothing in the trace: every node or none
            if request.spot and not self.replay.available(offer.zone):
                await self.terminate([iid for iid, r in records.items() if r is not None])
                raise CapacityError(
                    f"no spot capacity in {offer.zone} (trace)",
                    scope=f"{SIM_CLOUD}/{offer.region}/{offer.zone}",
                )
            record = {
                "zone": offer.zone,
                "key": offer.key,
                "spot": request.spot,
                "launched_at": self._clock.now(),
                "tags": request.tags,
            }
            for iid, held in records.items():
                if held is None:
                    tmp = self._path(iid).with_suffix(".tmp")
                    tmp.write_text(json.dumps(record))
                    os.replace(tmp, self._path(iid))
                    records[iid] = record
        return [self._instance(iid, r) for iid, r in records.items() if r is not None]

    def _state(self, record: Mapping[str, object]) -> InstanceState:
        launched_at = float(record["launched_at"])  # type: ignore[arg-type]
        now = self._clock.now()
        if bool(record["spot"]):
            zone = str(record["zone"])
            first = self.replay.row_at(launched_at)
            last = self.replay.row_at(now)
            available = self.replay.traces.zone(zone).available[first : last + 1]
            if not bool(np.all(available)):
                return InstanceState.PREEMPTED
        if now < launched_at + self.provisioning_delay_seconds:
            return InstanceState.PENDING
        return InstanceState.RUNNING

    def _instance(self, instance_id: str, record: Mapping[str, object]) -> Instance:
        offer = self._by_key.get(str(record.get("key"))) or self._by_zone[str(record["zone"])]
        return Instance(
            instance_id=instance_id,
            provider=self.name,
            cloud=SIM_CLOUD,
            region=offer.region,
            zone=offer.zone,
            instance_type=offer.instance_type,
            spot=bool(record["spot"]),
            state=self._state(record),
            tags=dict(record.get("tags", {})),  # type: ignore[call-overload]
            private_ip="127.0.0.1",
            launched_at=float(record["launched_at"]),  # type: ignore[arg-type]
        )

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        ids = (
            list(instance_ids)
            if instance_ids is not None
            else sorted(p.stem for p in self._dir.glob("sim-*.json"))
        )
        result: dict[str, InstanceState] = {}
        for iid in ids:
            record = self._read(iid)
            if record is None:
                result[iid] = InstanceState.TERMINATED
                continue
            instance = self._instance(iid, record)
            if tags is None or all(instance.tags.get(k) == v for k, v in tags.items()):
                result[iid] = instance.state
        return result

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        found = []
        for path in sorted(self._dir.glob("sim-*.json")):
            record = self._read(path.stem)
            if record is not None:
                instance = self._instance(path.stem, record)
                if all(instance.tags.get(k) == v for k, v in tags.items()):
                    found.append(instance)
        return found

    async def stop(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("sim instances cannot be stopped; terminate them")

    async def start(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("sim instances cannot be started again")

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        for iid in instance_ids:
            self._path(iid).unlink(missing_ok=True)

    async def aclose(self) -> None:
        return None


def sim_cpu_offers(catalog_offers: Iterable[Offer], replay: TraceReplay) -> list[Offer]:
    """The CPU-only types of the trace's cloud, in every trace zone, at the catalog's
    on-demand price for the zone's region (the cheapest zone's where zones differ)."""
    cloud = replay.traces.cloud
    regions = {replay.region(zone) for zone in replay.zones}
    cheapest: dict[tuple[str, str], Offer] = {}
    for offer in catalog_offers:
        if (
            offer.cloud != cloud
            or offer.accelerator_count
            or offer.region not in regions
            or offer.price_micros is None
        ):
            continue
        key = (offer.region, offer.instance_type)
        held = cheapest.get(key)
        if held is None or offer.price_micros < (held.price_micros or 0):
            cheapest[key] = offer
    return [
        replace(offer, cloud=SIM_CLOUD, zone=zone, spot_price_micros=None)
        for zone in replay.zones
        for (region, _), offer in sorted(cheapest.items())
        if region == replay.region(zone)
    ]
