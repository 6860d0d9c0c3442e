"""Instance states for one scheduler tick: one describe call per (provider, region) for every
instance skyd holds, however many jobs hold them.

Watching each job's instances with its own describe costs one API call per job per tick;
EC2 throttles non-mutating calls at about 20 a second of refill, so 500 running jobs would
be throttled for good. Here the first step of a tick that needs states triggers one batch
of describes (one per (provider, region), concurrently) and every step of that tick reads
from it; an instance launched after the batch is described on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from skyd.clock import Clock
from skyd.errors import ProviderError
from skyd.model import InstanceState
from skyd.providers.base import Provider
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store.records import InstanceRecord

log = logging.getLogger("skyd.scheduler")


class InstanceStates:
    """A snapshot of instance states, taken again on the first need of a new pass once it is
    `max_age` (a tick) old. A pass on a clock that has not moved (a test's virtual clock)
    takes it again too, so a frozen clock never freezes what the scheduler sees."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        providers: Mapping[str, Provider],
        max_age: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.providers = providers
        self.max_age = max_age
        self._states: dict[tuple[str, str], InstanceState] = {}
        self._taken_at: float | None = None
        self._new_pass = True
        self._refreshing: asyncio.Lock = asyncio.Lock()
        self.calls = 0  # describe calls made (the benchmark reads it)

    async def states(self, instances: Sequence[InstanceRecord]) -> dict[str, InstanceState]:
        """instance id -> state for `instances`; ones a provider could not describe this
        tick are left out (the caller waits for a later tick)."""
        wanted = list(instances)
        if not wanted:
            return {}
        await self._refresh_if_old()
        missing = [i for i in wanted if (i.provider, i.instance_id) not in self._states]
        if missing:
            await self._describe(missing)
        return {
            i.instance_id: self._states[(i.provider, i.instance_id)]
            for i in wanted
            if (i.provider, i.instance_id) in self._states
        }

    def new_pass(self) -> None:
        """The driver started a pass: the snapshot may be taken again if it is old."""
        self._new_pass = True

    def expire(self) -> None:
        """A provider told of a change to its instances (the sim trace withdrew capacity): the
        next need takes a new snapshot, not one from earlier in the tick that predates it."""
        self._taken_at = None

    async def _refresh_if_old(self) -> None:
        async with self._refreshing:
            now = self.clock.now()
            if self._taken_at is not None and (
                not self._new_pass or 0 < now - self._taken_at < self.max_age
            ):
                return
            self._new_pass = False
            self._states = {}
            held = [i for i in instance_store.active_instances(self.store) if i.job_id is not None]
            await self._describe(held)
            self._taken_at = now

    async def _describe(self, instances: Sequence[InstanceRecord]) -> None:
        groups: dict[tuple[str, str], list[str]] = {}
        for inst in instances:
            groups.setdefault((inst.provider, inst.region), []).append(inst.instance_id)

        async def one(provider_name: str, region: str, ids: list[str]) -> None:
            provider = self.providers.get(provider_name)
            if provider is None:
                return
            self.calls += 1
            try:
                found = await provider.describe(ids)
            except ProviderError as exc:
                log.warning("describe of %s/%s failed: %s", provider_name, region, exc.message)
                return
            for iid, state in found.items():
                self._states[(provider_name, iid)] = state

        await asyncio.gather(*(one(p, r, ids) for (p, r), ids in groups.items()))
