"""Live market polling: each source on its own APScheduler interval, results into the store's
time series, significant changes into the live market and out as market events.

A failing source backs off exponentially (honouring its own retry hints) and never blocks
the loop; a source that cannot work here at all (no credentials, no network) is reported
once and switched off, and skyd goes on with the shipped catalog prices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from skyd.clock import Clock
from skyd.errors import TransientError
from skyd.events import EventBus
from skyd.market.live import LiveMarket, MarketChange
from skyd.market.sources import MarketSource, SourceUnavailableError
from skyd.store import Store
from skyd.store import availability as availability_store
from skyd.store import jobs as job_store
from skyd.store import market as market_store
from skyd.store.market import Observation

log = logging.getLogger("skyd.market")

MAX_BACKOFF_SECONDS = 3600.0


class MarketPoller:
    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        market: LiveMarket,
        sources: Sequence[MarketSource],
        on_change: Callable[[list[MarketChange]], None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.market = market
        self.sources = list(sources)
        self._on_change = on_change
        self.failures: dict[str, int] = {}
        self.disabled: dict[str, str] = {}

    async def poll_once(self, source: MarketSource) -> list[MarketChange]:
        """Ask one source, record what changed, apply it, announce it. Raises on failure."""
        return self.apply(await source.fetch())

    def apply(self, observations: Sequence[Observation]) -> list[MarketChange]:
        """Record what changed, apply it to the live market and announce it (on the loop)."""
        changed: list[Observation] = []
        changes: list[MarketChange] = []
        for obs in observations:
            previous = market_store.latest(self.store, obs.scope)
            if previous is not None and _same_value(previous, obs):
                continue
            changed.append(obs)
            change: MarketChange | None = None
            if obs.spot_price_micros is not None:
                change = self.market.set_spot_price(obs.scope, obs.spot_price_micros)
            if obs.preemptions_per_hour is not None:
                change = self.market.set_preemption_rate(obs.scope, obs.preemptions_per_hour)
            if obs.available is not None:
                change = self.market.set_availability(obs.scope, obs.available) or change
            if change is not None:
                changes.append(change)
        now = self.clock.now()
        if changed:
            with self.store.transaction() as conn:
                market_store.record(conn, changed, observed_at=now)
                # what the spot policy learns run and outage lengths from (only changes)
                for o in changed:
                    if o.available is not None:
                        availability_store.record(conn, o.scope, o.at, o.available, o.source)
                events = [
                    job_store.append_event(
                        conn,
                        job_id=None,
                        at=now,
                        kind="market",
                        reason=_describe(change),
                        data={
                            "scope": change.scope,
                            "what": change.kind,
                            "old": change.old,
                            "new": change.new,
                        },
                    )
                    for change in changes[:50]  # one burst, not one event per offering
                ]
            for event in events:
                self.bus.publish(event)
        if changes and self._on_change is not None:
            self._on_change(changes)
        return changes

    async def poll_safely(self, source: MarketSource) -> float:
        """One poll that never raises; returns seconds until this source should run again."""
        if source.name in self.disabled:
            return MAX_BACKOFF_SECONDS
        try:
            await self.poll_once(source)
        except SourceUnavailableError as exc:
            self.disabled[source.name] = exc.message
            log.warning(
                "market source %s is unavailable (%s); using the shipped catalog prices",
                source.name,
                exc.message,
            )
            return MAX_BACKOFF_SECONDS
        except Exception as exc:
            failures = self.failures.get(source.name, 0) + 1
            self.failures[source.name] = failures
            delay = min(source.interval_seconds * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
            if isinstance(exc, TransientError) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            log.warning(
                "market source %s failed (%s); retrying in %.0fs",
                source.name,
                exc,
                delay,
                extra={"failures": failures},
            )
            return float(delay)
        self.failures.pop(source.name, None)
        return float(source.interval_seconds)

    async def run(self) -> None:
        """Poll every source on its interval until cancelled (APScheduler drives the timing)."""
        if not self.sources:
            await asyncio.Event().wait()
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        for source in self.sources:
            scheduler.add_job(
                self._scheduled,
                "date",
                run_date=datetime.now().astimezone(),
                args=[scheduler, source],
                id=source.name,
                misfire_grace_time=None,
            )
        scheduler.start()
        try:
            await asyncio.Event().wait()
        finally:
            scheduler.shutdown(wait=False)
            for source in self.sources:
                await source.aclose()

    async def _scheduled(self, scheduler: object, source: MarketSource) -> None:
        delay = await self.poll_safely(source)
        # one-shot jobs re-added with the next delay: backoff changes the interval freely
        scheduler.add_job(  # type: ignore[attr-defined]
            self._scheduled,
            "date",
            run_date=datetime.now().astimezone() + timedelta(seconds=delay),
            args=[scheduler, source],
            id=source.name,
            replace_existing=True,
            misfire_grace_time=None,
        )


def _same_value(a: Observation, b: Observation) -> bool:
    return (
        a.spot_price_micros == b.spot_price_micros
        and a.available == b.available
        and a.preemptions_per_hour == b.preemptions_per_hour
    )


def _describe(change: MarketChange) -> str:
    if change.kind == "spot_price":
        return f"spot price of {change.scope} changed from {change.old} to {change.new} $/h"
    return f"{change.kind} of {change.scope} changed from {change.old} to {change.new}"
