"""Leave-one-zone-out selection (bench.spot.cv): a zone is judged by constants chosen without it."""

from __future__ import annotations

import pytest

from bench.spot.cv import GRID, candidates, cross_validate, grid_error, main, score


def result(zone: str, up: list[float], gaps: list[list[float]]) -> dict[str, object]:
    return {
        "zone": zone,
        "up": up,
        "up_misses": 0,
        "candidates": [{"gaps": g, "misses": 0} for g in gaps],
    }


def test_grid_is_the_product_of_the_values() -> None:
    got = candidates({"b": (1.0, 2.0), "a": (5.0,)})
    assert got == ((("a", 5.0), ("b", 1.0)), (("a", 5.0), ("b", 2.0)))


def test_score_is_the_worst_ratio_then_the_mean() -> None:
    assert score([0.5, 1.0], [1.0, 4.0]) == (0.5, 0.75)


def test_held_out_zone_is_scored_with_the_choice_of_the_others() -> None:
    cands = candidates({"k": (1.0, 2.0)})
    # Candidate 0 is best overall and on any two zones; zone c alone prefers candidate 1.
    results = [
        result("a", [1.0], [[0.2], [0.6]]),
        result("b", [1.0], [[0.3], [0.7]]),
        result("c", [1.0], [[0.5], [0.4]]),
    ]
    report = cross_validate(results, cands)
    assert report["chosen"] == {"k": 1.0}
    assert report["held_out_choice"] == {"a": {"k": 1.0}, "b": {"k": 1.0}, "c": {"k": 1.0}}
    # Zone c is judged with candidate 0 (chosen on a and b), not with its own best.
    assert report["held_out"] == pytest.approx([(0.2 + 0.3 + 0.5) / 3])
    assert report["in_sample"] == pytest.approx([(0.2 + 0.3 + 0.5) / 3])
    # Now b prefers candidate 1 too: without a, candidate 1 wins (0.3 vs 0.65), and so on.
    results[1] = result("b", [1.0], [[0.8], [0.2]])
    report = cross_validate(results, cands)
    assert report["held_out_choice"] == {"a": {"k": 2.0}, "b": {"k": 1.0}, "c": {"k": 2.0}}
    assert report["held_out"] == pytest.approx([(0.6 + 0.8 + 0.4) / 3])


def test_a_grid_naming_no_constant_of_the_policy_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert grid_error(GRID) is None  # the built-in grid searches real constants
    code = main(["--traces", "unused", "--grid", '{"patience": [0, 1]}'])
    assert code == 2
    err = capsys.readouterr().err
    assert "patience is not a constant of SlackReserve" in err and "short_outage" in err
