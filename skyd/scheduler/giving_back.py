"""Giving instances back: terminate what the store marks TERMINATING and record each end.

The mark is written before the terminate call, in the same commit as the job's outcome
(`Journal.giving_back`), so this runs both right after the mark and, for marks a killed
daemon left behind, on every scheduler pass after a restart until the cloud confirmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from skyd.clock import Clock
from skyd.errors import ProviderError
from skyd.providers.base import Provider
from skyd.scheduler.transitions import Journal
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store.records import InstanceRecord

log = logging.getLogger("skyd.scheduler")

RETRY_CAP_S = 60.0  # a failed terminate is tried again after 2, 4, … up to this many seconds


class Terminations:
    """Finishes terminations; one call at a time per instance (a pass's sweep never races
    the step that marked it)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        providers: Mapping[str, Provider],
        journal: Journal,
        accrue: Callable[[float], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.providers = providers
        self.journal = journal
        self.accrue = accrue
        self._busy: set[tuple[str, str]] = set()
        # a terminate that failed is tried again after a backoff, not at every pass
        self._failures: dict[tuple[str, str], int] = {}
        self._retry_at: dict[tuple[str, str], float] = {}
        self._unowned: set[tuple[str, str]] = set()  # provider disabled: said once
        self._sweep: asyncio.Task[None] | None = None

    async def finish(self, instances: Sequence[InstanceRecord]) -> None:
        """Terminate each instance and record its final state as of the moment the call
        returned (an accrual pass that ran while it was awaited has charged up to then)."""
        ended_at: float | None = None
        for inst in instances:
            key = (inst.provider, inst.instance_id)
            if key in self._busy:
                continue  # another step is giving it back right now
            provider = self.providers.get(inst.provider)
            if provider is None:
                if key not in self._unowned:
                    self._unowned.add(key)
                    log.error(
                        "instance %s of disabled provider %s left running",
                        inst.instance_id,
                        inst.provider,
                    )
                continue
            self._busy.add(key)
            try:
                await provider.terminate([inst.instance_id])
            except ProviderError as exc:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(RETRY_CAP_S, 2.0**failures)
                self._retry_at[key] = self.clock.now() + delay
                log.warning(
                    "terminating %s failed (%s); tried again in %.0f s",
                    inst.instance_id,
                    exc.message,
                    delay,
                )
                continue
            finally:
                self._busy.discard(key)
            self._failures.pop(key, None)
            self._retry_at.pop(key, None)
            ended_at = self.clock.now()
            final = str(inst.data.get(instance_store.ENDS_AS, "TERMINATED"))
            self.journal.instances_ended([(inst.provider, inst.instance_id, final)], ended_at)
        if ended_at is not None:
            self.accrue(ended_at)

    async def finish_for_job(self, job_id: int) -> None:
        """Finish the job's marked terminations (all its attempts')."""
        await self.finish(
            [
                i
                for i in instance_store.instances_for_job(self.store, job_id)
                if i.state == instance_store.TERMINATING
            ]
        )

    def sweep(self) -> None:
        """Start finishing every marked termination nobody is working on (one sweep at a
        time): after a restart, these are the calls a killed daemon may not have made."""
        if self._sweep is not None and not self._sweep.done():
            return
        now = self.clock.now()
        left = [
            i
            for i in instance_store.terminating_instances(self.store)
            if (i.provider, i.instance_id) not in self._busy
            and (i.provider, i.instance_id) not in self._unowned
            and self._retry_at.get((i.provider, i.instance_id), 0.0) <= now
        ]
        if left:
            self._sweep = asyncio.create_task(self.finish(left), name="give-back")
            self._sweep.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "giving instances back failed; retried at the next pass", exc_info=task.exception()
        )
