"""Bounded polls until instances reach some states or an attempt some phases (not ordering)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from pathlib import Path

from skyd.model import InstanceState, RunPhase, RunStatus
from skyd.providers.base import AttemptRunner, Provider

# the phases of an attempt that has ended, whichever way
OVER = (RunPhase.DONE, RunPhase.KILLED, RunPhase.LOST)


async def until_states(
    provider: Provider,
    ids: Sequence[str],
    want: Collection[InstanceState],
    *,
    limit_s: float,
    every_s: float,
) -> dict[str, InstanceState]:
    """The instances' states once every one is in `want` (TimeoutError after `limit_s`)."""
    async with asyncio.timeout(limit_s):
        while True:
            states = await provider.describe(ids)
            if all(s in want for s in states.values()):
                return states
            await asyncio.sleep(every_s)


async def until_phase(
    runner: AttemptRunner,
    attempt_dir: Path,
    phases: Collection[RunPhase],
    *,
    limit_s: float,
    every_s: float,
) -> RunStatus:
    """The attempt's status once its phase is one of `phases` (TimeoutError after `limit_s`)."""
    async with asyncio.timeout(limit_s):
        while True:
            status = await runner.status(attempt_dir)
            if status.phase in phases:
                return status
            await asyncio.sleep(every_s)
