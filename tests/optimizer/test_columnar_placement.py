"""The columnar placement path decides exactly as the per-candidate one, on the shipped
catalogs, across markets, deadlines, price caps, live prices, risks and alternatives."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from skyd.api.market_routes import EXCLUSION_RANK, explain_order
from skyd.catalog import Catalog
from skyd.catalog.table import ExplainedRows
from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter
from skyd.optimizer import MarketSignals, PlacementRequest, options_from_decision, place
from skyd.optimizer.single import PlacementDecision, place_each
from skyd.optimizer.vectorized import RowViews

Rows = Sequence[tuple[Candidate, ExclusionReason | None]]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def both(request: PlacementRequest, signals: MarketSignals) -> tuple[PlacementDecision, ...]:
    fast = place(request, signals)
    plain = PlacementRequest(
        alternatives=[list(a) for a in request.alternatives],
        ordered=request.ordered,
        objective=request.objective,
        estimated_hours=request.estimated_hours,
        per_accelerator_hours=request.per_accelerator_hours,
        restart_cost_hours=request.restart_cost_hours,
        deadline_hours=request.deadline_hours,
        num_nodes=request.num_nodes,
        max_hourly_price_micros=request.max_hourly_price_micros,
        filters=request.filters,
        data=request.data,
    )
    return fast, place_each(plain, signals)


def same(fast: PlacementDecision, slow: PlacementDecision) -> None:
    assert fast.chosen == slow.chosen
    assert fast.reason == slow.reason
    assert fast.alternative == slow.alternative
    assert list(fast.candidates) == list(slow.candidates)
    assert fast.preferred == slow.preferred
    assert fast.chosen_view == slow.chosen_view
    # what `skyctl optimize` lists: ranked on the columns, equal to sorting every view
    assert isinstance(fast.candidates, RowViews)
    assert (
        fast.candidates.ranked(EXCLUSION_RANK, 40)
        == sorted(slow.candidates, key=explain_order)[:40]
    )
    for per_group, most in ((1, 16), (2, 48)):
        assert options_from_decision(fast, per_group, most) == options_from_decision(
            slow, per_group, most
        )


SIGNALS = [
    MarketSignals(),
    MarketSignals(default_preemptions_per_hour=0.0),
    MarketSignals(
        spot_price_micros={"aws/us-east-1/use1-az1/c5.xlarge": 10_000},
        preemptions_per_hour={
            "aws": 0.01,
            "aws/us-east-1": 2.0,
            "gcp/us-central1/us-central1-a": 5.0,
        },
        region_rank={"aws/us-east-2": 0, "lambda/us-east-1": 0},
        default_region_rank=1,
    ),
]

FILTERS = [
    OfferFilter(),
    OfferFilter(spot=True),
    OfferFilter(spot=False, cpus=Amount(8.0), memory_gib=Amount(16.0, or_more=True)),
    OfferFilter(cloud="aws", region="us-east-1", max_hourly_price_micros=400_000),
    OfferFilter(countries=("DE", "JP"), blocked=frozenset({"gcp", "aws/eu-central-1"})),
    OfferFilter(cpus=Amount(1000.0, or_more=True)),  # nothing fits
    OfferFilter(faster_network=True, cpus=Amount(32.0, or_more=True)),  # network_tier: best
]


@pytest.mark.parametrize("signals", SIGNALS)
@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize(
    ("deadline", "max_price", "objective"),
    [(None, None, "cost"), (2.0, 300_000, "cost"), (0.5, None, "time")],
)
def test_columnar_and_per_candidate_paths_agree(
    catalog: Catalog,
    signals: MarketSignals,
    f: OfferFilter,
    deadline: float | None,
    max_price: int | None,
    objective: str,
) -> None:
    explained = catalog.explain(f)
    assert isinstance(explained, ExplainedRows)
    request = PlacementRequest(
        alternatives=[explained],
        estimated_hours=1.5,
        deadline_hours=deadline,
        max_hourly_price_micros=max_price,
        objective=objective,  # type: ignore[arg-type]
        filters=[f],
    )
    same(*both(request, signals))


@pytest.mark.parametrize("ordered", [False, True])
def test_several_alternatives_and_busy_clouds_agree(catalog: Catalog, ordered: bool) -> None:
    first = OfferFilter(cloud="lambda")
    second = OfferFilter(spot=True, cpus=Amount(4.0, or_more=True))
    reasons = {"local": ExclusionReason.NO_QUOTA, "azure": ExclusionReason.PROVIDER_DISABLED}
    alternatives = []
    for f in (first, second):
        explained = catalog.explain(f)
        assert isinstance(explained, ExplainedRows)
        alternatives.append(explained.with_cloud_reasons(reasons))
    request = PlacementRequest(
        alternatives=alternatives,
        ordered=ordered,
        per_accelerator_hours={"A100": 0.5},
        estimated_hours=3.0,
        num_nodes=2,
        filters=[first, second],
    )
    same(*both(request, SIGNALS[2]))
    # the rows read like explain's list, reasons included
    rows = alternatives[1]
    assert [r for _, r in rows][: len(rows)] == [r for _, r in list(rows)]
    assert all(c.offer.cloud != "azure" or r is not None for c, r in rows)


@pytest.mark.parametrize(
    "f",
    [
        *FILTERS,
        OfferFilter(accelerators=(("A100", 1),)),
        OfferFilter(accelerators=(("A100", 1), ("H100", 8)), spot=True, cloud="gcp"),
        OfferFilter(accelerators=(("V100", 1),), instance_type="p3.2xlarge", spot=False),
        OfferFilter(instance_type="c5.xlarge", blocked=frozenset({"aws/us-east-1"})),
        OfferFilter(accelerators=(("L4", 1),), countries=("US",), max_hourly_price_micros=900_000),
        OfferFilter(accelerators=(("NO-SUCH-GPU", 1),)),
        OfferFilter(accelerators=(("H100", 2), ("A100", 8)), faster_network=True),
    ],
)
def test_columnar_explain_lists_what_the_per_offer_scan_lists(
    catalog: Catalog, f: OfferFilter
) -> None:
    assert list(catalog.explain(f)) == catalog.explain_each(f)
