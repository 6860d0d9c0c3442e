"""Queries against the shipped catalogs, with answers worked out from the source data."""

from __future__ import annotations

import pytest

from skyd.catalog import Catalog, gce_machine_type
from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter, dollars_to_micros


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def keys(candidates: list[Candidate]) -> list[str]:
    return [c.key for c in candidates]


def test_loads_all_four_clouds(catalog: Catalog) -> None:
    assert catalog.clouds == ["aws", "azure", "gcp", "lambda"]
    assert len(catalog.offers) == 3683 + 1465 + 185 + 323


def test_cheapest_a100_across_clouds_both_markets(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(accelerators=(("A100", 1),)))
    # Lambda's gpu_1x_a100 (1.29 on demand) ties with its _sxm4 twin in every region; ties
    # go by region, then instance type. GCP's best spot A100 is 0.32744 + 0.9643 = 1.29174.
    assert keys(found[:2]) == [
        "lambda/asia-northeast-1//gpu_1x_a100/ondemand",
        "lambda/asia-northeast-1//gpu_1x_a100_sxm4/ondemand",
    ]
    assert found[0].hourly_price_micros == 1_290_000
    prices = [c.hourly_price_micros for c in found]
    assert prices == sorted(prices)
    assert {c.offer.cloud for c in found} == {"gcp", "lambda"}
    assert all(c.offer.accelerator_name == "A100" and c.offer.accelerator_count == 1 for c in found)


def test_spot_only_picks_gcp_host_plus_gpu(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(accelerators=(("A100", 1),), spot=True))
    best = found[0]
    assert best.key == "gcp/asia-northeast1/asia-northeast1-a/a2-highgpu-1g/spot"
    assert best.hourly_price_micros == dollars_to_micros("0.32744") + dollars_to_micros("0.9643")
    assert all(c.spot for c in found)
    assert "lambda" not in {c.offer.cloud for c in found}  # Lambda sells no spot


def test_on_demand_only_never_returns_spot(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(accelerators=(("H200", 8),), spot=False))
    assert found and not any(c.spot for c in found)
    # p5e.48xlarge is sold only as spot in this snapshot, so it cannot appear on demand.
    assert "p5e.48xlarge" not in {c.offer.instance_type for c in found}
    spot = catalog.query(OfferFilter(accelerators=(("H200", 8),), spot=True))
    assert "p5e.48xlarge" in {c.offer.instance_type for c in spot}


def test_any_of_accelerators_is_a_union(catalog: Catalog) -> None:
    a100 = catalog.query(OfferFilter(accelerators=(("A100", 1),)))
    h100 = catalog.query(OfferFilter(accelerators=(("H100", 1),)))
    both = catalog.query(OfferFilter(accelerators=(("A100", 1), ("H100", 1))))
    assert sorted(keys(both)) == sorted(keys(a100) + keys(h100))
    assert both[0] == min(a100[0], h100[0], key=lambda c: c.hourly_price_micros)


def test_accelerator_count_must_match_exactly(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(accelerators=(("T4", 2),), cloud="gcp", spot=False))
    assert {c.offer.accelerator_count for c in found} == {2}
    # n1-standard-4 (0.19) + 2×T4 (0.70) in us-central1-a.
    assert found[0].key == "gcp/us-central1/us-central1-a/n1-standard-4+T4x2/ondemand"
    assert found[0].hourly_price_micros == 890_000
    assert gce_machine_type(found[0].offer.instance_type) == "n1-standard-4"
    assert gce_machine_type("a2-highgpu-1g") == "a2-highgpu-1g"


def test_cloud_region_zone_pins(catalog: Catalog) -> None:
    f = OfferFilter(accelerators=(("T4", 1),), cloud="aws", region="us-east-1", zone="use1-az2")
    found = catalog.query(f)
    assert found[0].key == "aws/us-east-1/use1-az2/g4dn.xlarge/spot"
    assert found[0].hourly_price_micros == 186_000
    assert {(c.offer.cloud, c.offer.region, c.offer.zone) for c in found} == {
        ("aws", "us-east-1", "use1-az2")
    }


def test_aws_zone_pin_by_az_name_pins_the_region(catalog: Catalog) -> None:
    f = OfferFilter(instance_type="g4dn.xlarge", zone="us-east-1a", spot=True)
    found = catalog.query(f)
    assert {c.offer.region for c in found} == {"us-east-1"}
    assert {c.offer.zone for c in found} == {
        "use1-az1",
        "use1-az2",
        "use1-az4",
        "use1-az5",
        "use1-az6",
    }
    assert found[0].hourly_price_micros == 184_500  # use1-az5


def test_instance_type_pin(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(instance_type="Standard_ND96isr_H100_v5"))
    assert {c.offer.instance_type for c in found} == {"Standard_ND96isr_H100_v5"}
    # The source's count of 12 is corrected to Azure's published 8.
    assert {c.offer.accelerator_count for c in found} == {8}


def test_countries_restrict_regions(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(accelerators=(("H100", 8),), countries=("de",)))
    assert found
    assert {catalog.country_of(c.offer.cloud, c.offer.region) for c in found} == {"DE"}
    assert {(c.offer.cloud, c.offer.region) for c in found} == {
        ("gcp", "europe-west3"),
        ("lambda", "europe-central-1"),
    }


def test_region_table(catalog: Catalog) -> None:
    assert catalog.country_of("lambda", "asia-northeast-2") == "JP"
    assert catalog.continent_of("gcp", "southamerica-west1") == "SA"
    assert catalog.country_of("aws", "me-south-1") == "BH"
    assert catalog.country_of("aws", "nowhere-1") is None
    for offer in catalog.offers:
        assert catalog.country_of(offer.cloud, offer.region) is not None, offer.key


def test_cpus_and_memory_amounts(catalog: Catalog) -> None:
    exact = catalog.query(OfferFilter(cpus=Amount(4), memory_gib=Amount(16), spot=False))
    assert exact[0].key == "aws/us-east-1/use1-az1/m5.xlarge/ondemand"
    assert all(c.offer.vcpus == 4 and c.offer.memory_gib == 16 for c in exact)
    at_least = catalog.query(
        OfferFilter(accelerators=(("A100", 1),), cpus=Amount(30, or_more=True), spot=False)
    )
    assert at_least and all(c.offer.vcpus >= 30 for c in at_least)
    assert "gcp" not in {c.offer.cloud for c in at_least}  # a2-highgpu-1g has 12 vCPUs


def test_max_price_applies_to_the_market_price(catalog: Catalog) -> None:
    cap = 1_290_000
    found = catalog.query(OfferFilter(accelerators=(("A100", 1),), max_hourly_price_micros=cap))
    assert found and all(c.hourly_price_micros <= cap for c in found)
    assert {c.offer.cloud for c in found} == {"lambda"}
    assert catalog.query(OfferFilter(accelerators=(("A100", 1),), max_hourly_price_micros=1)) == []


@pytest.mark.parametrize(
    ("scope", "gone"),
    [
        ("lambda", lambda c: c.offer.cloud == "lambda"),
        ("lambda/asia-northeast-1", lambda c: c.offer.region == "asia-northeast-1"),
        (
            "gcp/asia-northeast1/asia-northeast1-a",
            lambda c: c.offer.zone == "asia-northeast1-a",
        ),
        (
            "lambda/asia-northeast-1//gpu_1x_a100",
            lambda c: c.offer.key == "lambda/asia-northeast-1//gpu_1x_a100",
        ),
        (
            "gcp/asia-northeast1/asia-northeast1-a/a2-highgpu-1g/spot",
            lambda c: c.key == "gcp/asia-northeast1/asia-northeast1-a/a2-highgpu-1g/spot",
        ),
    ],
)
def test_blocked_scopes(catalog: Catalog, scope: str, gone: object) -> None:
    f = OfferFilter(accelerators=(("A100", 1),))
    before = catalog.query(f)
    after = catalog.query(OfferFilter(accelerators=(("A100", 1),), blocked=frozenset({scope})))
    assert callable(gone)
    expected = [c for c in before if not gone(c)]
    assert after == expected
    assert len(after) < len(before)


def test_blocking_the_spot_market_keeps_on_demand(catalog: Catalog) -> None:
    key = "gcp/asia-northeast1/asia-northeast1-a/a2-highgpu-1g"
    after = keys(
        catalog.query(OfferFilter(accelerators=(("A100", 1),), blocked=frozenset({key + "/spot"})))
    )
    assert key + "/spot" not in after
    assert key + "/ondemand" in after


def test_cpu_only_query_pinned_to_cloud(catalog: Catalog) -> None:
    found = catalog.query(OfferFilter(cloud="AWS", cpus=Amount(2), spot=True))
    assert found and {c.offer.cloud for c in found} == {"aws"}
    assert {c.offer.instance_type for c in found} == {"m5.large"}


def test_explain_gives_first_reason_per_candidate(catalog: Catalog) -> None:
    f = OfferFilter(
        accelerators=(("A100", 1),),
        spot=True,
        countries=("US",),
        max_hourly_price_micros=2_000_000,
        blocked=frozenset({"gcp/us-central1"}),
    )
    rows = catalog.explain(f)
    by_key = {c.key: reason for c, reason in rows}
    # Lambda has no spot market: it is shown through its on-demand price.
    assert by_key["lambda/us-east-1//gpu_1x_a100/ondemand"] is ExclusionReason.NO_SPOT_MARKET
    assert by_key["lambda/asia-south-1//gpu_1x_a100/ondemand"] is (
        ExclusionReason.COUNTRY_NOT_ALLOWED
    )
    assert by_key["gcp/us-central1/us-central1-a/a2-highgpu-1g/spot"] is ExclusionReason.BLOCKED
    feasible = [c for c, reason in rows if reason is None]
    assert feasible == catalog.query(f)
    # Explanations stay relevant: only A100×1 offerings appear.
    assert {(c.offer.accelerator_name, c.offer.accelerator_count) for c, _ in rows} == {("A100", 1)}


def test_explain_max_price_is_checked_on_the_market_price(catalog: Catalog) -> None:
    key = "gcp/asia-northeast1/asia-northeast1-a/a2-highgpu-1g"
    f = OfferFilter(accelerators=(("A100", 1),), cloud="gcp", max_hourly_price_micros=1_291_739)
    by_key = {c.key: reason for c, reason in catalog.explain(f)}
    assert by_key[key + "/spot"] is ExclusionReason.OVER_MAX_PRICE
    at_cap = OfferFilter(
        accelerators=(("A100", 1),), cloud="gcp", max_hourly_price_micros=1_291_740
    )
    assert {c.key: r for c, r in catalog.explain(at_cap)}[key + "/spot"] is None


def test_explain_pins_and_resources_and_unpriced(catalog: Catalog) -> None:
    rows = catalog.explain(
        OfferFilter(accelerators=(("H200", 8),), cloud="aws", spot=False, cpus=Amount(192))
    )
    by_key = {c.key: reason for c, reason in rows}
    assert by_key["aws/us-east-2/use2-az1/p5e.48xlarge/spot"] is ExclusionReason.NOT_PRICED
    assert {r for k, r in by_key.items() if k.startswith("gcp/")} == {
        ExclusionReason.PINNED_ELSEWHERE
    }
    small = catalog.explain(OfferFilter(accelerators=(("H200", 8),), cpus=Amount(500)))
    assert {r for _, r in small} == {ExclusionReason.RESOURCES_TOO_SMALL}


def test_unknown_accelerator_in_a_query_matches_nothing(catalog: Catalog) -> None:
    assert catalog.query(OfferFilter(accelerators=(("NoSuchGPU", 1),))) == []
    # Query accepts any spelling the normalizer accepts.
    assert catalog.query(OfferFilter(accelerators=(("a100", 1),))) == catalog.query(
        OfferFilter(accelerators=(("A100", 1),))
    )


def test_cheapest_per_accelerator(catalog: Catalog) -> None:
    rows = catalog.cheapest_per_accelerator(spot=False)
    groups = [(c.offer.accelerator_name, c.offer.accelerator_count, c.offer.cloud) for c in rows]
    assert len(groups) == len(set(groups))
    assert all(not c.spot for c in rows)
    assert "" not in {c.offer.accelerator_name for c in rows}
    a100 = {
        c.offer.cloud: c
        for c in rows
        if c.offer.accelerator_name == "A100" and c.offer.accelerator_count == 1
    }
    assert a100["lambda"].hourly_price_micros == 1_290_000
    assert a100["gcp"].hourly_price_micros == min(
        c.hourly_price_micros
        for c in catalog.query(OfferFilter(accelerators=(("A100", 1),), cloud="gcp", spot=False))
    )
    spot_gcp = catalog.cheapest_per_accelerator(spot=True, cloud="gcp", region="us-central1")
    assert spot_gcp and {(c.offer.cloud, c.offer.region, c.spot) for c in spot_gcp} == {
        ("gcp", "us-central1", True)
    }


def test_offer_by_key(catalog: Catalog) -> None:
    offer = catalog.offer_by_key("aws/us-east-1/use1-az2/g4dn.xlarge")
    assert offer is not None and offer.price_micros == 526_000
    assert catalog.offer_by_key("aws/us-east-1/use1-az2/nope") is None


def test_explain_with_instance_type_pin_only_lists_that_type(catalog: Catalog) -> None:
    rows = catalog.explain(OfferFilter(instance_type="p3.2xlarge", region="us-west-2"))
    assert rows and {c.offer.instance_type for c, _ in rows} == {"p3.2xlarge"}
    assert {r for c, r in rows if c.offer.region != "us-west-2"} == {
        ExclusionReason.PINNED_ELSEWHERE
    }
    assert [c for c, r in rows if r is None] == catalog.query(
        OfferFilter(instance_type="p3.2xlarge", region="us-west-2")
    )


def test_catalog_from_records_rejects_duplicate_offers(catalog: Catalog) -> None:
    from skyd.errors import CatalogError

    offer = catalog.offers[0]
    small = Catalog([offer])
    assert small.clouds == [offer.cloud] and small.country_of(offer.cloud, offer.region) is None
    with pytest.raises(CatalogError, match="listed twice"):
        Catalog([offer, offer])


@pytest.mark.parametrize("spot", [None, True, False])
def test_unindexed_scan_agrees_with_per_cloud_queries(catalog: Catalog, spot: bool | None) -> None:
    from skyd.catalog.matching import candidate_order

    def request(cloud: str | None) -> OfferFilter:
        return OfferFilter(
            cpus=Amount(8, or_more=True),
            cloud=cloud,
            countries=("US", "DE"),
            spot=spot,
            max_hourly_price_micros=2_000_000,
        )

    everywhere = catalog.query(request(None))
    per_cloud = [c for cloud in catalog.clouds for c in catalog.query(request(cloud))]
    assert everywhere == sorted(per_cloud, key=candidate_order)
    assert len(everywhere) > 100
