"""Single placement over the shipped catalogs, through the catalog's explain() contract."""

from __future__ import annotations

import pytest

from skyd.catalog import Catalog
from skyd.model import ExclusionReason, OfferFilter
from skyd.optimizer import MarketSignals, PlacementRequest, place


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_on_demand_choice_is_the_cheapest_feasible_offering(catalog: Catalog) -> None:
    wanted = OfferFilter(accelerators=(("A100", 1),), spot=False)
    explained = catalog.explain(wanted)
    decision = place(
        PlacementRequest(alternatives=[explained], estimated_hours=3.0, filters=[wanted])
    )
    assert len(decision.candidates) == len(explained)
    assert decision.chosen is not None
    cheapest = catalog.query(wanted)[0]
    assert decision.chosen.hourly_price_micros == cheapest.hourly_price_micros
    assert decision.chosen.expected_cost_micros == 3 * cheapest.hourly_price_micros
    assert sum(view.chosen for view in decision.candidates) == 1


def test_spot_is_chosen_only_while_restarts_are_cheap_enough(catalog: Catalog) -> None:
    wanted = OfferFilter(accelerators=(("V100", 1),))
    request = PlacementRequest(
        alternatives=[catalog.explain(wanted)], estimated_hours=10.0, restart_cost_hours=1.0
    )
    calm = place(request, MarketSignals(default_preemptions_per_hour=0.01))
    stormy = place(request, MarketSignals(default_preemptions_per_hour=5.0))
    assert calm.chosen is not None and calm.chosen.spot is True
    assert stormy.chosen is not None and stormy.chosen.spot is False


def test_infeasible_request_names_what_was_asked(catalog: Catalog) -> None:
    wanted = OfferFilter(accelerators=(("H100", 16),), countries=("DE",))
    decision = place(PlacementRequest(alternatives=[catalog.explain(wanted)], filters=[wanted]))
    assert decision.chosen is None
    assert decision.reason.startswith("no ")
    assert "16×H100 in country DE" in decision.reason
    assert all(view.excluded is not None for view in decision.candidates)
    assert ExclusionReason.DEADLINE not in {view.excluded for view in decision.candidates}
