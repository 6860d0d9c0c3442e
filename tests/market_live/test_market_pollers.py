"""Live market polling against a fake EC2 endpoint speaking the real Query/XML protocol."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.market.advisor import SpotAdvisorSource
from skyd.market.aws_spot import AwsSpotPriceSource
from skyd.market.live import LiveMarket
from skyd.market.pollers import MAX_BACKOFF_SECONDS, MarketPoller
from skyd.market.sources import SourceUnavailableError
from skyd.store import Store, open_store
from skyd.store import jobs as job_store
from skyd.store import market as market_store
from skyd.store.market import Observation
from skyd.testing.fake_ec2_spot import FakeEc2Spot

REPO = Path(__file__).resolve().parents[2]
KEY = "aws/us-east-1/use1-az2/p3.2xlarge"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
async def ec2() -> AsyncIterator[tuple[FakeEc2Spot, str]]:
    fake = FakeEc2Spot(zones={"us-east-1a": "use1-az2", "us-east-1b": "use1-az4"})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("/"))
    await server.close()


def _aws_us_east_1() -> Catalog:
    catalog = Catalog.load(clouds=["aws"])
    return Catalog([o for o in catalog.offers if o.region == "us-east-1"], clouds=["aws"])


async def test_price_change_is_recorded_with_both_times_and_announced(
    aws_env: None, store: Store, ec2: tuple[FakeEc2Spot, str]
) -> None:
    fake, url = ec2
    catalog = _aws_us_east_1()
    assert catalog.offer_by_key(KEY) is not None
    market = LiveMarket(catalog, {})
    bus = EventBus()
    clock = VirtualClock(1_700_000_000.0)
    source = AwsSpotPriceSource(catalog.offers, endpoint_url=url, regions=["us-east-1"])
    poller = MarketPoller(store=store, bus=bus, clock=clock, market=market, sources=[source])
    first_at = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    fake.set_price("p3.2xlarge", "us-east-1a", "0.918000", first_at)
    changes = await poller.poll_once(source)
    assert [c.scope for c in changes] == [KEY]
    assert market.signals().spot_price_micros[KEY] == 918_000

    # the same price again is not a new observation
    assert await poller.poll_once(source) == []
    second_at = first_at + dt.timedelta(hours=2)
    fake.set_price("p3.2xlarge", "us-east-1a", "1.402100", second_at)
    clock.set(clock.now() + 7200)
    changes = await poller.poll_once(source)
    assert changes and changes[0].old == 0.918 and changes[0].new == 1.4021

    series = market_store.history(store, KEY)
    assert [(o.at, o.spot_price_micros) for o in series] == [
        (first_at.timestamp(), 918_000),
        (second_at.timestamp(), 1_402_100),
    ]
    market_events = [e for e in job_store.events_since(store, 0) if e.kind == "market"]
    assert len(market_events) == 2 and "1.4021" in market_events[-1].reason
    assert fake.requests.count("DescribeAvailabilityZones") == 1  # zone map read once


async def test_no_credentials_is_said_once_and_the_source_switched_off(
    monkeypatch: pytest.MonkeyPatch, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    catalog = _aws_us_east_1()
    source = AwsSpotPriceSource(
        catalog.offers, endpoint_url="http://127.0.0.1:9", regions=["us-east-1"]
    )
    poller = MarketPoller(
        store=store,
        bus=EventBus(),
        clock=VirtualClock(0),
        market=LiveMarket(catalog, {}),
        sources=[source],
    )
    with pytest.raises(SourceUnavailableError):
        await poller.poll_once(source)
    assert await poller.poll_safely(source) == MAX_BACKOFF_SECONDS
    assert await poller.poll_safely(source) == MAX_BACKOFF_SECONDS
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1


class FlakySource:
    """A remote source that fails a set number of times, then answers."""

    name = "flaky"
    interval_seconds = 60.0

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def fetch(self) -> list[Observation]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("connection reset by peer")
        return [Observation(scope=KEY, at=5.0, source=self.name, spot_price_micros=1_000_000)]

    async def aclose(self) -> None:
        return None


async def test_errors_back_off_exponentially_and_recover(store: Store) -> None:
    market = LiveMarket(_aws_us_east_1(), {})
    poller = MarketPoller(
        store=store, bus=EventBus(), clock=VirtualClock(0), market=market, sources=[]
    )
    source = FlakySource(failures=3)
    delays = [await poller.poll_safely(source) for _ in range(4)]
    assert delays == [60.0, 120.0, 240.0, 60.0]
    assert market.signals().spot_price_micros[KEY] == 1_000_000


async def test_spot_advisor_buckets_become_preemption_rates(store: Store) -> None:
    catalog = _aws_us_east_1()
    advisor = SpotAdvisorSource(
        REPO / "catalogs" / "aws-spot-advisor.json", catalog.offers, VirtualClock(10.0)
    )
    observations = await advisor.fetch()
    rates = {o.scope: o.preemptions_per_hour for o in observations}
    rate = rates.get(KEY)
    assert KEY in rates and rate is not None and rate > 0
    # p3.2xlarge is in the >20% bucket in us-east-1; m5.large is not: riskier means a higher rate
    m5 = next(k for k in rates if k.endswith("/m5.large"))
    assert rates[KEY] > rates[m5]  # type: ignore[operator]
