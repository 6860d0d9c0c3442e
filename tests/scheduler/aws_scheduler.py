"""A job scheduler over the AWS provider's catalog, on an injected clock, for planner tests."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.config import Settings
from skyd.events import EventBus
from skyd.market.live import LiveMarket
from skyd.providers.aws import AwsConfig, AwsProvider
from skyd.runner.process import ProcessRunner
from skyd.scheduler.service import JobScheduler
from skyd.store import Store


class AwsScheduler(NamedTuple):
    scheduler: JobScheduler
    market: LiveMarket
    bus: EventBus
    clock: VirtualClock


def aws_scheduler(store: Store, tmp_path: Path) -> AwsScheduler:
    """The scheduler (no planner yet: each test wires its own) and what it was built on."""
    clock = VirtualClock(1_800_000_000.0)
    providers = {"aws": AwsProvider(AwsConfig(), clock=clock)}
    market = LiveMarket(Catalog.load(clouds=["aws"]), providers)
    bus = EventBus()
    scheduler = JobScheduler(
        store=store,
        bus=bus,
        clock=clock,
        settings=Settings(state_dir=tmp_path / "state", socket_path=tmp_path / "s.sock"),
        providers=providers,
        runner=ProcessRunner(),
        market=market,
    )
    return AwsScheduler(scheduler, market, bus, clock)
