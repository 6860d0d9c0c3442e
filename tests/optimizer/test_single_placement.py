"""Single-job placement on crafted markets with known best answers."""

from __future__ import annotations

import math

import pytest

from skyd.model import Amount, Candidate, ExclusionReason, OfferFilter, dollars_to_micros
from skyd.optimizer import (
    DEFAULT_EXPECTED_HOURS,
    MarketSignals,
    PlacementRequest,
    advisor_bucket_preemptions_per_hour,
    availability_preemptions_per_hour,
    describe_filter,
    place,
)
from tests.optimizer.crafted_market import candidate, feasible, offer

NO_RISK = MarketSignals(default_preemptions_per_hour=0.0)

V100_EAST = offer(region="us-east-1", zone="use1-az1", price="3.00", spot_price="1.00")
V100_WEST = offer(region="us-west-2", zone="usw2-az1", price="2.50", spot_price="0.90")
A100_GCP = offer(
    cloud="gcp",
    region="us-central1",
    zone="us-central1-a",
    instance_type="a2-highgpu-1g",
    accelerator="A100",
    price="4.00",
    spot_price="1.50",
)


def test_cost_objective_picks_cheapest_expected_cost_and_marks_only_it() -> None:
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST), candidate(V100_WEST), candidate(A100_GCP))],
        estimated_hours=2.0,
    )
    decision = place(request, NO_RISK)
    assert decision.chosen is not None
    assert decision.chosen.offer == V100_WEST and decision.chosen.spot is False
    assert decision.chosen.expected_cost_micros == dollars_to_micros("5.00")
    assert [v.chosen for v in decision.candidates] == [False, True, False]
    assert [v.expected_cost_micros for v in decision.candidates] == [
        dollars_to_micros("6.00"),
        dollars_to_micros("5.00"),
        dollars_to_micros("8.00"),
    ]


def test_default_runtime_is_stated_default_and_nodes_multiply_cost() -> None:
    request = PlacementRequest(alternatives=[feasible(candidate(V100_EAST))], num_nodes=4)
    decision = place(request, NO_RISK)
    assert decision.chosen is not None
    assert decision.chosen.expected_hours == DEFAULT_EXPECTED_HOURS
    assert decision.chosen.expected_cost_micros == 4 * dollars_to_micros("3.00")


def test_per_accelerator_estimates_separate_cost_from_time_objective() -> None:
    # A100 $4/h for 1 h = $4; V100 $3/h for 1.2 h = $3.60: cheaper but slower.
    alternatives = [feasible(candidate(V100_EAST), candidate(A100_GCP))]
    estimates = {"a100": 1.0, "V100": 1.2}  # keys are matched case-insensitively
    by_cost = place(
        PlacementRequest(alternatives=alternatives, per_accelerator_hours=estimates), NO_RISK
    )
    by_time = place(
        PlacementRequest(
            alternatives=alternatives, per_accelerator_hours=estimates, objective="time"
        ),
        NO_RISK,
    )
    assert by_cost.chosen is not None and by_cost.chosen.offer == V100_EAST
    assert by_time.chosen is not None and by_time.chosen.offer == A100_GCP


def test_spot_preemption_overhead_is_priced_in() -> None:
    # Spot $1/h, 0.1 preemptions/h, 1 h lost per preemption: 90 % of the time is progress, so a
    # 10 h job takes 11.11 h and $11.11, still well under $30 on-demand.
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST), candidate(V100_EAST, spot=True))],
        estimated_hours=10.0,
        restart_cost_hours=1.0,
    )
    decision = place(request, MarketSignals(default_preemptions_per_hour=0.1))
    assert decision.chosen is not None and decision.chosen.spot is True
    assert decision.chosen.expected_hours == pytest.approx(10 / 0.9)
    assert decision.chosen.expected_cost_micros == round(dollars_to_micros("1.00") * 10 / 0.9)


def test_risky_spot_loses_to_on_demand_when_restarts_eat_the_discount() -> None:
    # 0.4 preemptions/h x 1.9 h restart: 24 % progress, a 10 h job needs 41.7 h on spot
    # ($41.67) vs $30 on-demand.
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST), candidate(V100_EAST, spot=True))],
        estimated_hours=10.0,
        restart_cost_hours=1.9,
    )
    decision = place(request, MarketSignals(default_preemptions_per_hour=0.4))
    assert decision.chosen is not None and decision.chosen.spot is False
    spot_view = next(v for v in decision.candidates if v.spot)
    assert spot_view.excluded is None
    assert spot_view.expected_cost_micros > decision.chosen.expected_cost_micros


def test_spot_preempted_faster_than_it_restarts_is_excluded() -> None:
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST, spot=True), candidate(V100_EAST))],
        restart_cost_hours=1.0,
    )
    decision = place(request, MarketSignals(default_preemptions_per_hour=2.0))
    assert decision.chosen is not None and decision.chosen.spot is False
    assert decision.candidates[0].excluded is ExclusionReason.NO_SPOT_MARKET
    assert "never finish" in decision.candidates[0].note


def test_spot_is_excluded_when_the_deadline_cannot_absorb_its_overhead() -> None:
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST), candidate(V100_EAST, spot=True))],
        estimated_hours=10.0,
        restart_cost_hours=1.0,
        deadline_hours=10.5,
    )
    decision = place(request, MarketSignals(default_preemptions_per_hour=0.1))
    assert decision.chosen is not None and decision.chosen.spot is False
    spot_view = next(v for v in decision.candidates if v.spot)
    assert spot_view.excluded is ExclusionReason.DEADLINE
    assert "deadline" in spot_view.note


def test_spot_is_kept_when_the_deadline_has_slack() -> None:
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST), candidate(V100_EAST, spot=True))],
        estimated_hours=10.0,
        restart_cost_hours=1.0,
        deadline_hours=11.2,
    )
    decision = place(request, MarketSignals(default_preemptions_per_hour=0.1))
    assert decision.chosen is not None and decision.chosen.spot is True


def test_when_nothing_meets_the_deadline_the_fastest_on_demand_is_chosen() -> None:
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST), candidate(A100_GCP))],
        per_accelerator_hours={"V100": 8.0, "A100": 5.0},
        deadline_hours=4.0,
    )
    decision = place(request, NO_RISK)
    assert decision.chosen is not None and decision.chosen.offer == A100_GCP
    assert "deadline" in decision.reason


def test_live_spot_price_overrides_the_catalog() -> None:
    east_spot, west_spot = candidate(V100_EAST, spot=True), candidate(V100_WEST, spot=True)
    signals = MarketSignals(
        spot_price_micros={V100_WEST.key: dollars_to_micros("2.00")},
        default_preemptions_per_hour=0.0,
    )
    decision = place(PlacementRequest(alternatives=[feasible(west_spot, east_spot)]), signals)
    assert decision.chosen is not None and decision.chosen.offer == V100_EAST
    west_view = next(v for v in decision.candidates if v.offer == V100_WEST)
    assert west_view.hourly_price_micros == dollars_to_micros("2.00")


def test_live_price_over_the_maximum_is_excluded() -> None:
    signals = MarketSignals(
        spot_price_micros={V100_EAST.key: dollars_to_micros("5.00")},
        default_preemptions_per_hour=0.0,
    )
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST, spot=True))],
        max_hourly_price_micros=dollars_to_micros("2.00"),
    )
    decision = place(request, signals)
    assert decision.chosen is None
    assert decision.candidates[0].excluded is ExclusionReason.OVER_MAX_PRICE
    assert "over_max_price" in decision.reason


def test_ordered_takes_the_first_alternative_with_a_feasible_candidate() -> None:
    alternatives: list[list[tuple[Candidate, ExclusionReason | None]]] = [
        [(candidate(V100_WEST), ExclusionReason.BLOCKED)],
        feasible(candidate(A100_GCP)),  # second choice, dearer than the third
        feasible(candidate(V100_EAST)),
    ]
    ordered = place(PlacementRequest(alternatives=alternatives, ordered=True), NO_RISK)
    any_of = place(PlacementRequest(alternatives=alternatives, ordered=False), NO_RISK)
    assert ordered.chosen is not None and ordered.chosen.offer == A100_GCP
    assert ordered.alternative == 1
    assert any_of.chosen is not None and any_of.chosen.offer == V100_EAST
    assert any_of.alternative == 2


def test_ties_break_deterministically_whatever_the_input_order() -> None:
    twin_a = offer(region="us-east-2", zone="use2-az1", price="3.00")
    twin_b = offer(region="us-east-1", zone="use1-az9", price="3.00")
    first = place(PlacementRequest(alternatives=[feasible(candidate(twin_a), candidate(twin_b))]))
    second = place(PlacementRequest(alternatives=[feasible(candidate(twin_b), candidate(twin_a))]))
    assert first.chosen is not None and second.chosen is not None
    assert first.chosen.offer == second.chosen.offer == twin_b


def test_no_offering_names_the_unmet_constraint() -> None:
    wanted = OfferFilter(accelerators=(("H100", 16),), countries=("DE",))
    decision = place(PlacementRequest(alternatives=[[]], filters=[wanted]))
    assert decision.chosen is None
    assert decision.reason == "no offering with 16×H100 in country DE"


def test_all_excluded_summarises_reasons_by_count() -> None:
    alternatives = [
        [
            (candidate(V100_EAST), ExclusionReason.COUNTRY_NOT_ALLOWED),
            (candidate(V100_WEST), ExclusionReason.COUNTRY_NOT_ALLOWED),
            (candidate(A100_GCP), ExclusionReason.BLOCKED),
        ]
    ]
    decision = place(PlacementRequest(alternatives=alternatives))
    assert decision.chosen is None
    assert "2 country_not_allowed, 1 blocked" in decision.reason


def test_preemption_signals_resolve_from_offer_to_zone_to_region() -> None:
    signals = MarketSignals(
        preemptions_per_hour={"aws/us-east-1/use1-az1": 0.3, "aws/us-west-2": 0.2},
        default_preemptions_per_hour=0.01,
    )
    assert signals.preemption_rate(V100_EAST) == 0.3
    assert signals.preemption_rate(V100_WEST) == 0.2
    assert signals.preemption_rate(A100_GCP) == 0.01


def test_advisor_buckets_map_to_increasing_rates() -> None:
    rates = [advisor_bucket_preemptions_per_hour(b) for b in range(5)]
    assert rates == sorted(rates) and rates[0] > 0
    # "<5%" over a 24 h life: 2.5 % chance, so about 0.00105 per hour.
    assert rates[0] == pytest.approx(-math.log(1 - 0.025) / 24)
    with pytest.raises(ValueError, match="bucket 7"):
        advisor_bucket_preemptions_per_hour(7)


def test_availability_rate_from_a_trace() -> None:
    # Available half the time with 1 h outages: one loss per available hour.
    assert availability_preemptions_per_hour(0.5, 1.0) == pytest.approx(1.0)
    assert availability_preemptions_per_hour(0.0, 1.0) == math.inf


def test_never_available_spot_market_is_excluded() -> None:
    signals = MarketSignals(preemptions_per_hour={V100_EAST.key: math.inf})
    request = PlacementRequest(
        alternatives=[feasible(candidate(V100_EAST, spot=True), candidate(V100_EAST))]
    )
    decision = place(request, signals)
    assert decision.chosen is not None and decision.chosen.spot is False
    assert decision.candidates[0].excluded is ExclusionReason.NO_SPOT_MARKET


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_nodes": 0}, "num_nodes"),
        ({"estimated_hours": -1.0}, "estimated_hours"),
        ({"per_accelerator_hours": {"A100": 0.0}}, "per_accelerator_hours"),
        ({"objective": "speed"}, "objective"),
        ({"restart_cost_hours": -0.5}, "restart_cost_hours"),
        ({"filters": [OfferFilter(), OfferFilter()]}, "filters"),
    ],
)
def test_bad_requests_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PlacementRequest(alternatives=[[]], **kwargs)  # type: ignore[arg-type]


def test_describe_filter_words_every_constraint() -> None:
    text = describe_filter(
        OfferFilter(
            accelerators=(("A100", 1), ("V100", 2)),
            cpus=Amount(8, or_more=True),
            cloud="aws",
            spot=True,
            max_hourly_price_micros=dollars_to_micros("2.5"),
        )
    )
    assert text == "1×A100 or 2×V100, cpus 8+ on cloud aws, spot only, at most $2.50/h"


def test_importing_the_optimizer_does_not_load_ortools() -> None:
    import subprocess
    import sys

    probe = "import sys, skyd.optimizer; print('ortools' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
