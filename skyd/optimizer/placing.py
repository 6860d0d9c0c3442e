"""Placement of one job: `place()` chooses between the per-candidate and the columnar path."""

from __future__ import annotations

from skyd.optimizer.single import MarketSignals, PlacementDecision, PlacementRequest, place_each
from skyd.optimizer.vectorized import place_rows, rows_of


def place(request: PlacementRequest, signals: MarketSignals | None = None) -> PlacementDecision:
    """Choose where one job runs: by expected cost (or time), honouring ordered/any_of.

    `ordered`: the first alternative with a feasible candidate wins; otherwise the best across
    all alternatives. Candidates that meet the deadline always beat ones that do not; when none
    does, the fastest on-demand candidate is chosen and the reason says the deadline is at risk.
    Ties go to the less risky market, then the preferred region (MarketSignals.region_rank).
    A request answered from catalog columns (skyd.catalog.table) is decided on them, with the
    same result, in a fraction of the time.
    """
    signals = signals or MarketSignals()
    table = rows_of(request)
    if table is not None:
        return place_rows(request, signals, table)
    return place_each(request, signals)
