"""Offerings of self-describing providers read again: a change reaches placement once, a
refresh that changes nothing does nothing, and a provider that fails does not stop the others."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from skyd.catalog import Catalog
from skyd.clock import VirtualClock
from skyd.market.live import LiveMarket
from skyd.market.offer_refresh import OfferRefresh
from skyd.model import Offer
from skyd.scheduler.plan_process import provider_shapes
from skyd.testing.memory_cloud import MemoryCloud, memory_offers


class LabCluster(MemoryCloud):
    """A fixed pool whose offerings are read from the system: `refresh` takes `next_read`."""

    def __init__(self, name: str, offers: Sequence[Offer]) -> None:
        super().__init__(VirtualClock(0.0), offerings=[], name=name)
        self.next_read: list[Offer] = list(offers)
        self.reads = 0

    async def refresh(self) -> None:
        self.reads += 1
        self.offerings = list(self.next_read)

    def offers(self) -> list[Offer]:
        return list(self.offerings)


class BrokenCluster(LabCluster):
    async def refresh(self) -> None:
        self.reads += 1
        raise RuntimeError("the cluster's API answered nonsense")


def lab_offers(cloud: str, zones: Sequence[str]) -> list[Offer]:
    return [replace(o, cloud=cloud) for o in memory_offers(zones)]


async def test_a_change_reaches_placement_once_and_a_broken_provider_stops_nothing() -> None:
    lab = LabCluster("lab", [])
    broken = BrokenCluster("other", [])
    market = LiveMarket(Catalog([]), {"lab": lab, "other": broken})
    changed: list[int] = []
    providers = {"lab": lab, "other": broken}
    refresh = OfferRefresh(
        providers,
        market,
        interval_seconds=300.0,
        seen=lambda: provider_shapes(providers, ()),
        on_change=lambda _: changed.append(market.version),
    )
    assert not market.enabled_catalog.offers and market.provider_for("lab") is None

    lab.next_read = lab_offers("lab", ["rack-1", "rack-2"])
    version = market.version
    assert await refresh.refresh_once() is True
    assert broken.reads == 1 and lab.reads == 1  # the broken one was asked, and did not stop it
    assert {o.zone for o in market.enabled_catalog.offers} == {"rack-1", "rack-2"}
    assert market.provider_for("lab") == "lab"
    assert market.version > version and changed == [market.version]  # cached placements stale

    assert await refresh.refresh_once() is False  # the same offerings: nothing to do
    assert changed == [market.version] and refresh.reads == 2 and refresh.changes == 1

    lab.next_read = lab_offers("lab", ["rack-2"])  # a rack taken out of the cluster
    assert await refresh.refresh_once() is True
    assert {o.zone for o in market.enabled_catalog.offers} == {"rack-2"}
    assert len(changed) == 2
