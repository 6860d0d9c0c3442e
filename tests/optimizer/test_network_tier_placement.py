"""`network_tier: best` leaves out the offerings skyd cannot give a faster network, on both
placement paths, and keeps lab pools (their own network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.catalog.network_tier import AWS_BEST, AZURE_BEST, GCP_BEST, POOL_BEST, best_network
from skyd.model import ExclusionReason, Offer, OfferFilter
from skyd.optimizer import PlacementRequest, place
from skyd.providers.tiers import network_note
from skyd.spec import parse_task

CORPUS = Path(__file__).parents[1] / "fixtures" / "skypilot_corpus"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def _offer(cloud: str, instance_type: str, vcpus: float) -> Offer:
    return Offer(
        cloud=cloud,
        region="r",
        zone="z",
        instance_type=instance_type,
        accelerator_name="",
        accelerator_count=0,
        vcpus=vcpus,
        memory_gib=8.0,
        price_micros=1,
        spot_price_micros=None,
    )


@pytest.mark.parametrize(
    ("cloud", "instance_type", "vcpus", "becomes"),
    [
        ("aws", "p4d.24xlarge", 96, AWS_BEST),
        ("aws", "c5n.18xlarge", 72, AWS_BEST),
        ("aws", "p5.48xlarge", 192, AWS_BEST),  # p5-efa.html
        ("aws", "g6e.48xlarge", 192, None),  # not in the tables read
        ("aws", "c5.xlarge", 4, None),
        ("gcp", "n2-standard-32", 32, GCP_BEST),
        ("gcp", "n2-standard-16", 16, None),  # Tier_1 needs 30+ vCPUs
        ("gcp", "a3-highgpu-2g", 52, None),  # not a Tier_1 series
        ("azure", "Standard_NC80adis_H100_v5", 80, AZURE_BEST),
        ("azure", "Standard_D2s_v5", 2, None),
        ("azure", "Standard_B8ms", 8, None),
        ("lambda", "gpu_2x_h100_sxm5", 52, None),
        ("kubernetes", "node-a", 8, POOL_BEST),
        ("ssh", "box", 8, POOL_BEST),
    ],
)
def test_what_best_becomes_per_offering(
    cloud: str, instance_type: str, vcpus: float, becomes: str | None
) -> None:
    assert best_network(_offer(cloud, instance_type, vcpus)) == becomes


def test_both_paths_exclude_offerings_without_a_faster_network(catalog: Catalog) -> None:
    f = OfferFilter(accelerators=(("H100", 2),), faster_network=True)
    columnar = list(catalog.explain(f))
    assert columnar == catalog.explain_each(f)
    reasons = {(c.offer.cloud, r) for c, r in columnar}
    assert ("lambda", ExclusionReason.NO_FASTER_NETWORK) in reasons
    assert ("lambda", None) not in reasons
    for candidate, reason in columnar:
        if reason is None:
            assert best_network(candidate.offer) is not None
    # without the tier, lambda's H100:2 is feasible
    plain = catalog.explain(OfferFilter(accelerators=(("H100", 2),)))
    assert any(c.offer.cloud == "lambda" and r is None for c, r in plain)


def test_corpus_task_is_placed_where_best_is_applied(catalog: Catalog) -> None:
    path = CORPUS / "gpt_oss_20b_lora.yaml"
    spec = parse_task(path.read_text(), source=path.name)  # paths kept as written
    filters = spec.offer_filters(catalog.normalize_accelerator)
    assert [f.faster_network for f in filters] == [True]
    alternatives = [catalog.explain(f) for f in filters]
    decision = place(PlacementRequest(alternatives=alternatives, filters=filters))
    assert decision.chosen is not None
    assert decision.chosen.offer.cloud != "lambda"
    assert best_network(decision.chosen.offer) is not None


def test_notes_say_what_best_became() -> None:
    assert network_note("gcp", "best", _offer("gcp", "n2-standard-32", 32)) == GCP_BEST
    assert network_note("aws", "best", _offer("aws", "p4d.24xlarge", 96)) == AWS_BEST
    assert network_note("azure", "best", _offer("azure", "Standard_D8s_v5", 8)) == AZURE_BEST
    assert network_note("slurm", "best", None) == POOL_BEST
    assert network_note("lambda", "best", None) == (
        "not applicable on lambda: the default networking is used"
    )
    assert network_note("aws", "standard", None) == "standard (the provider's default networking)"
    assert network_note("aws", None, None) is None
