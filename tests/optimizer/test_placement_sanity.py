"""Placement sanity: no unrequested accelerators when a cheaper fit or waiting is available,
every size of the common AWS CPU families, and ties broken by region preference, not name."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.config import ConfigError, load_settings
from skyd.model import Amount, Candidate, ExclusionReason, Offer, OfferFilter
from skyd.optimizer import MarketSignals, PlacementRequest, place
from skyd.optimizer.preference import region_ranks

NO_RISK = MarketSignals(default_preemptions_per_hour=0.0)


def offer(itype: str, price: str, acc: str = "", count: int = 0, cloud: str = "c") -> Offer:
    micros = int(Decimal(price) * 1_000_000)
    return Offer(cloud, "r1", "z1", itype, acc, count, 8.0, 32.0, micros, None)


def cpu_request(
    rows: list[tuple[Candidate, ExclusionReason | None]], deadline: float | None = None
) -> PlacementRequest:
    return PlacementRequest(
        alternatives=[rows], deadline_hours=deadline, estimated_hours=1.0, filters=[OfferFilter()]
    )


def row(
    o: Offer, reason: ExclusionReason | None = None
) -> tuple[Candidate, ExclusionReason | None]:
    return (Candidate(o, False, o.price_micros or 0), reason)


def test_cpu_job_takes_the_cheaper_cpu_instance_not_the_gpu() -> None:
    gpu, cpu = offer("inf1.2xlarge", "0.362", "Inferentia", 1), offer("c5.2xlarge", "0.34")
    decision = place(cpu_request([row(gpu), row(cpu)]), NO_RISK)
    assert decision.chosen is not None and decision.chosen.offer == cpu
    gpu_view = next(v for v in decision.candidates if v.offer == gpu)
    assert gpu_view.excluded is ExclusionReason.UNREQUESTED_ACCELERATOR
    assert "Inferentia" in gpu_view.note and "did not ask" in gpu_view.note


def test_cpu_job_waits_for_free_busy_machines_rather_than_a_gpu() -> None:
    gpu = offer("p3.2xlarge", "3.06", "V100", 1, cloud="sim")
    local = Offer("local", "host", "", "local", "", 0, 8.0, 32.0, 0, None)
    decision = place(cpu_request([row(gpu), row(local, ExclusionReason.NO_QUOTA)]), NO_RISK)
    assert decision.chosen is None  # it waits
    assert decision.candidates[0].excluded is ExclusionReason.UNREQUESTED_ACCELERATOR


def test_with_a_deadline_busy_machines_do_not_hold_it_back() -> None:
    gpu = offer("gpu", "0.50", "T4", 1)
    local = Offer("local", "host", "", "local", "", 0, 8.0, 32.0, 0, None)
    decision = place(
        cpu_request([row(gpu), row(local, ExclusionReason.NO_QUOTA)], deadline=5.0), NO_RISK
    )
    assert decision.chosen is not None and decision.chosen.offer == gpu


def test_an_accelerator_instance_is_used_when_it_is_the_only_fit_or_cheaper() -> None:
    gpu, cpu = offer("gpu", "0.30", "T4", 1), offer("cpu", "0.40")
    only = place(cpu_request([row(gpu)]), NO_RISK)
    assert only.chosen is not None and only.chosen.offer == gpu
    cheaper = place(cpu_request([row(gpu), row(cpu)]), NO_RISK)
    assert cheaper.chosen is not None and cheaper.chosen.offer == gpu


def test_a_job_that_asks_for_the_accelerator_keeps_it() -> None:
    gpu, cpu = offer("gpu", "0.50", "T4", 1), offer("cpu", "0.10")
    request = PlacementRequest(
        alternatives=[[row(gpu), row(cpu)]],
        filters=[OfferFilter(accelerators=(("T4", 1),))],
    )
    decision = place(request, NO_RISK)
    assert decision.chosen is not None and decision.chosen.offer == cpu  # rows as given
    assert all(v.excluded is None for v in decision.candidates)


def test_eight_cpus_sixteen_gib_lands_on_a_cpu_instance_of_the_shipped_catalog() -> None:
    catalog = Catalog.load(clouds=["aws"])
    f = OfferFilter(cpus=Amount(8.0), memory_gib=Amount(16.0, or_more=True), spot=False)
    request = PlacementRequest(alternatives=[catalog.explain(f)], filters=[f])
    decision = place(request, NO_RISK)
    assert decision.chosen is not None
    assert decision.chosen.offer.accelerator_count == 0
    assert decision.chosen.offer.instance_type == "c5.2xlarge"


def test_aws_catalog_has_every_size_of_the_common_cpu_families() -> None:
    catalog = Catalog.load(clouds=["aws"])
    east = {
        o.instance_type: o
        for o in catalog.offers
        if o.region == "us-east-1" and o.zone == "use1-az1" and not o.accelerator_count
    }
    for family in ("c5", "m5", "r5"):
        for size in ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge", "metal"):
            assert f"{family}.{size}" in east, f"{family}.{size}"
    # linear in vCPUs within the family, as the transcribed sizes are
    assert east["c5.2xlarge"].price_micros == 2 * (east["c5.xlarge"].price_micros or 0)
    assert east["m5.24xlarge"].vcpus == 96 and east["m5.24xlarge"].memory_gib == 384
    assert east["c5.2xlarge"].spot_price_micros is None  # derived sizes: on-demand only
    assert east["c5.xlarge"].spot_price_micros is not None  # transcribed: both markets


def lambda_a100() -> tuple[Catalog, PlacementRequest]:
    catalog = Catalog.load(clouds=["lambda"])
    f = OfferFilter(accelerators=(("A100", 1),), cloud="lambda")
    return catalog, PlacementRequest(alternatives=[catalog.explain(f)], filters=[f])


def ranks(catalog: Catalog, home: list[str], countries: list[str]) -> dict[str, int]:
    regions = sorted({(o.cloud, o.region) for o in catalog.offers})
    return region_ranks(((c, r, catalog.country_of(c, r)) for c, r in regions), home, countries)


def test_equal_prices_go_to_the_home_country_not_the_first_name() -> None:
    catalog, request = lambda_a100()
    # by name alone, Lambda's asia-northeast-1 (Osaka) comes first at the same price
    assert min(o.region for o in catalog.offers) == "asia-northeast-1"
    signals = MarketSignals(region_rank=ranks(catalog, [], ["US"]), default_region_rank=2)
    decision = place(request, signals)
    assert decision.chosen is not None
    assert catalog.country_of("lambda", decision.chosen.offer.region) == "US"
    # the global plan's options are in the same order: the preferred region first
    assert decision.feasible[0].offer.region == decision.chosen.offer.region


def test_configured_home_regions_win_ties_in_their_order() -> None:
    catalog, request = lambda_a100()
    home = ["lambda/europe-central-1", "us-*"]
    signals = MarketSignals(region_rank=ranks(catalog, home, ["US"]), default_region_rank=3)
    decision = place(request, signals)
    assert decision.chosen is not None and decision.chosen.offer.region == "europe-central-1"


def test_availability_breaks_ties_before_region() -> None:
    a = Offer("c", "a-region", "z", "t", "", 0, 8.0, 32.0, None, 1_000_000)
    b = Offer("c", "b-region", "z", "t", "", 0, 8.0, 32.0, None, 1_000_000)
    request = PlacementRequest(
        alternatives=[
            [(Candidate(a, True, 1_000_000), None), (Candidate(b, True, 1_000_000), None)]
        ],
        restart_cost_hours=0.0,
    )
    signals = MarketSignals(preemptions_per_hour={"c/a-region": 0.5, "c/b-region": 0.01})
    decision = place(request, signals)
    assert decision.chosen is not None and decision.chosen.offer.region == "b-region"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[placement]\nhome_countries = ["USA"]\n', "placement.home_countries[0]"),
        ('[placement]\nhome_regions = [""]\n', "placement.home_regions[0]"),
    ],
)
def test_bad_home_settings_are_refused_naming_the_field(
    tmp_path: pytest.TempPathFactory, text: str, field: str
) -> None:
    path = tmp_path / "skyd.toml"  # type: ignore[operator]
    path.write_text(text)
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path)


def test_configured_home_regions_reach_the_daemons_placements(tmp_path: Path) -> None:
    from skyd.market.live import LiveMarket
    from skyd.scheduler.placement import PlacementContext, Placer
    from skyd.spec import parse_task

    config = tmp_path / "skyd.toml"
    config.write_text('[placement]\nhome_regions = ["lambda/europe-*"]\n')
    settings = load_settings(config)
    market = LiveMarket(Catalog.load(clouds=["lambda"]), {})
    market.prefer_regions(settings.placement.home_regions, settings.placement.home_countries)
    spec = parse_task("resources:\n  accelerators: A100:1\nrun: train\n", source="t.yaml")
    outcome = Placer(market).decide(spec, context=PlacementContext(assume_all_providers=True))
    assert outcome.decision.chosen is not None
    assert outcome.decision.chosen.offer.region == "europe-central-1"
    market.prefer_regions([], ["US"])
    outcome = Placer(market).decide(spec, context=PlacementContext(assume_all_providers=True))
    assert outcome.decision.chosen is not None
    assert market.catalog.country_of("lambda", outcome.decision.chosen.offer.region) == "US"
