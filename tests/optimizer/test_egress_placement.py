"""Data-aware placement: the egress of a task's data is part of each candidate's expected cost,
in single placement (both paths) and in the global plan's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.catalog.locate import default_catalog_dir
from skyd.errors import CatalogError, SpecError
from skyd.market.live import LiveMarket
from skyd.model import OfferFilter
from skyd.optimizer import MarketSignals, PlacementRequest, options_from_decision, place
from skyd.optimizer.egress import (
    DataFootprint,
    DataTransfer,
    EgressTable,
    read_egress_table,
)
from skyd.optimizer.single import place_each
from skyd.scheduler.placement import PlacementContext, Placer
from skyd.spec import TaskSpec, parse_task

V100_TASK = (
    "resources:\n  accelerators: V100:1\nestimated_runtime: 10h\n"
    "file_mounts:\n  /data: s3://lab-data/train\n"
)


@pytest.fixture(scope="module")
def table() -> EgressTable:
    return read_egress_table(default_catalog_dir() / "egress.csv")


@pytest.fixture(scope="module")
def market() -> LiveMarket:
    return LiveMarket(Catalog.load(), {})


class KnownData:
    """A DataLocator whose lookups already happened: the bucket is in aws/us-east-1."""

    version = 1

    def __init__(self, table: EgressTable, gigabytes: float | None) -> None:
        self.table, self.gigabytes = table, gigabytes

    def footprint(self, spec: TaskSpec) -> DataFootprint | None:
        moves = [
            DataTransfer(m.url, "aws", "us-east-1", self.gigabytes or 0.0, "in", "bucket listing")
            for m in spec.storage_mounts.values()
        ] + [
            DataTransfer(url, "aws", "us-east-1", size, "in", "inputs")
            for url, size in spec.inputs.items()
        ]
        return DataFootprint(tuple(moves), self.table) if moves else None

    async def prefetch(self, spec: TaskSpec) -> None:
        return None

    def note(self, url: str) -> str | None:
        return None


def decide(market: LiveMarket, table: EgressTable, text: str, gigabytes: float | None) -> object:
    spec = parse_task(text + "run: train\n", source="t.yaml")
    placer = Placer(market, KnownData(table, gigabytes))
    return placer.decide(spec, context=PlacementContext(assume_all_providers=True)).decision


def test_the_shipped_table_has_every_cloud_with_a_rate_and_its_source(table: EgressTable) -> None:
    assert set(table.rates) >= {"aws", "gcp", "azure"}
    for rate in table.rates.values():
        assert rate.source.startswith("https://")
        assert rate.same_region_micros == 0
        assert rate.inter_region_micros <= rate.internet_micros
    aws = table.rates["aws"]
    assert table.per_gb_micros("aws", "us-east-1", "aws", "us-east-1") == 0
    assert table.per_gb_micros("aws", "us-east-1", "aws", "us-west-2") == aws.inter_region_micros
    assert table.per_gb_micros("aws", "us-east-1", "gcp", "us-central1") == aws.internet_micros
    assert table.per_gb_micros("aws", None, "aws", "us-east-1") == aws.inter_region_micros
    assert table.per_gb_micros("lambda", "us-east-1", "aws", "us-east-1") == 0  # not billed


def test_a_2_tb_dataset_in_s3_keeps_the_job_on_aws_in_its_region(
    market: LiveMarket, table: EgressTable
) -> None:
    without = decide(market, table, "resources:\n  accelerators: V100:1\n", None)
    assert without.chosen.offer.cloud == "gcp"  # type: ignore[attr-defined]  # cheapest V100
    decision = decide(market, table, V100_TASK, 2000.0)
    chosen = decision.chosen  # type: ignore[attr-defined]
    assert (chosen.offer.cloud, chosen.offer.region) == ("aws", "us-east-1")
    assert chosen.egress_cost_micros == 0
    gcp = next(v for v in decision.feasible if v.offer.cloud == "gcp")  # type: ignore[attr-defined]
    assert gcp.egress_cost_micros == 2000 * table.rates["aws"].internet_micros
    assert gcp.compute_cost_micros < chosen.expected_cost_micros < gcp.expected_cost_micros
    assert "data egress" not in decision.reason  # type: ignore[attr-defined]
    other_region = next(
        v
        for v in decision.feasible  # type: ignore[attr-defined]
        if v.offer.cloud == "aws" and v.offer.region != "us-east-1"
    )
    assert other_region.egress_cost_micros == 2000 * table.rates["aws"].inter_region_micros


def test_a_2_gb_dataset_is_cheap_to_move_so_the_cheaper_cloud_wins(
    market: LiveMarket, table: EgressTable
) -> None:
    decision = decide(market, table, V100_TASK, 2.0)
    chosen = decision.chosen  # type: ignore[attr-defined]
    assert chosen.offer.cloud == "gcp"
    assert chosen.egress_cost_micros == 2 * table.rates["aws"].internet_micros
    assert "compute +" in decision.reason and "data egress" in decision.reason  # type: ignore[attr-defined]


def test_inputs_size_hint_prices_the_data_too(market: LiveMarket, table: EgressTable) -> None:
    text = (
        "resources:\n  accelerators: V100:1\nestimated_runtime: 10h\n"
        "inputs:\n  s3://lab-data: 2000\n"
    )
    decision = decide(market, table, text, None)
    assert decision.chosen.offer.cloud == "aws"  # type: ignore[attr-defined]


def test_global_plan_options_carry_the_egress(market: LiveMarket, table: EgressTable) -> None:
    decision = decide(market, table, V100_TASK, 2000.0)
    options = options_from_decision(decision)  # type: ignore[arg-type]
    assert options[0].offer.cloud == "aws"
    gcp = [o for o in options if o.offer.cloud == "gcp"]
    assert gcp and all(o.expected_cost_micros >= 180_000_000 for o in gcp)


def test_columnar_path_adds_the_same_egress_as_the_per_candidate_one(table: EgressTable) -> None:
    catalog = Catalog.load()
    data = DataFootprint(
        (DataTransfer("s3://lab-data", "aws", "us-east-1", 500.0, "in", "inputs"),), table
    )
    explained = catalog.explain(OfferFilter())
    request = PlacementRequest(
        alternatives=[explained], estimated_hours=2.0, filters=[OfferFilter()], data=data
    )
    fast = place(request, MarketSignals())
    slow = place_each(
        PlacementRequest(
            alternatives=[list(explained)],
            estimated_hours=2.0,
            filters=[OfferFilter()],
            data=data,
        ),
        MarketSignals(),
    )
    assert fast.chosen == slow.chosen
    assert fast.chosen is not None and fast.chosen.offer.cloud == "aws"
    assert fast.chosen.offer.region == "us-east-1"
    assert list(fast.candidates) == list(slow.candidates)
    assert any(v.egress_cost_micros for v in fast.candidates)


def test_writes_are_priced_from_the_job_to_the_bucket(table: EgressTable) -> None:
    data = DataFootprint(
        (DataTransfer("gs://out", "gcp", "us-central1", 100.0, "out", "outputs"),), table
    )
    assert data.cost_micros("aws", "us-east-1") == 100 * table.rates["aws"].internet_micros
    assert data.cost_micros("gcp", "us-central1") == 0
    assert data.cost_micros("lambda", "us-east-1") == 0  # lambda does not bill data leaving


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cloud,internet\naws,1\n", "header must start with"),
        (
            "cloud,internet_usd_per_gb,inter_region_usd_per_gb,same_region_usd_per_gb\n"
            "aws,cheap,0,0\n",
            r"egress.csv:2:internet_usd_per_gb: 'cheap' is not a number",
        ),
        (
            "cloud,internet_usd_per_gb,inter_region_usd_per_gb,same_region_usd_per_gb\n"
            "aws,0.09,-1,0\n",
            "must be between 0 and 10",
        ),
    ],
)
def test_a_bad_egress_table_is_refused_naming_the_line(
    tmp_path: Path, text: str, match: str
) -> None:
    path = tmp_path / "egress.csv"
    path.write_text(text)
    with pytest.raises(CatalogError, match=match):
        read_egress_table(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("inputs: s3://x\n", "inputs: 's3://x' is not a mapping"),
        ("inputs:\n  /local/dir: 10\n", "is not a bucket URL"),
        ("inputs:\n  s3://bucket/x: lots\n", "is not a size in GB"),
        ("outputs:\n  gs://bucket/x: -1\n", "out of range"),
    ],
)
def test_bad_inputs_and_outputs_name_the_field(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_task(text + "run: x\n", source="t.yaml")


def test_inputs_and_outputs_are_kept_in_gb() -> None:
    spec = parse_task(
        "inputs:\n  gs://lab/train: 2000\noutputs:\n  s3://lab-out: 1.5\nrun: x\n", source="t.yaml"
    )
    assert dict(spec.inputs) == {"gs://lab/train": 2000.0}
    assert dict(spec.outputs) == {"s3://lab-out": 1.5}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[data]\ns3_endpoint_url = "localhost:9000"\n', "data.s3_endpoint_url"),
        ("[data]\nlookup_timeout_seconds = 0\n", "data.lookup_timeout_seconds"),
        ("[data]\nmax_listed_objects = -1\n", "data.max_listed_objects"),
    ],
)
def test_bad_data_settings_name_the_setting(tmp_path: Path, text: str, match: str) -> None:
    from skyd.config import ConfigError, load_settings

    path = tmp_path / "skyd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(path)


def test_configured_bucket_regions_place_a_bucket_skyd_cannot_ask_about(
    table: EgressTable,
) -> None:
    from skyd.clock import SystemClock
    from skyd.config import DataSettings
    from skyd.market.data_location import DataLocator

    settings = DataSettings(bucket_regions={"gs://lab-data": "us-central1"})
    locator = DataLocator(settings, table, SystemClock())
    spec = parse_task("inputs:\n  gs://lab-data/train: 100\nrun: x\n", source="t.yaml")
    footprint = locator.footprint(spec)
    assert footprint is not None
    [move] = footprint.transfers
    assert (move.cloud, move.region, move.gigabytes) == ("gcp", "us-central1", 100.0)
    assert footprint.cost_micros("gcp", "us-central1") == 0
    assert footprint.cost_micros("aws", "us-east-1") == 100 * table.rates["gcp"].internet_micros
    assert locator.note("gs://lab-data/train") == "region from [data] bucket_regions"


def test_the_global_plan_keeps_a_2_tb_job_next_to_its_data_under_a_quota(
    market: LiveMarket, table: EgressTable
) -> None:
    """Two V100 jobs, one with 2 TB in aws/us-east-1 and one without data, one aws V100
    allowed by quota: the plan's option costs include the egress, so the job whose data is in
    aws/us-east-1 gets it and the other goes to GCP's cheaper V100."""
    from skyd.optimizer import AssignmentJob, AssignmentProblem, Quota, solve_assignment

    heavy = decide(market, table, V100_TASK, 2000.0)
    light = decide(
        market, table, "resources:\n  accelerators: V100:1\nestimated_runtime: 10h\n", None
    )
    problem = AssignmentProblem(
        jobs=[
            AssignmentJob(job_id=1, options=options_from_decision(light)),  # type: ignore[arg-type]
            AssignmentJob(job_id=2, options=options_from_decision(heavy)),  # type: ignore[arg-type]
        ],
        quotas=[Quota(name="aws V100", cloud="aws", resource="gpus", limit=1)],
    )
    plan = solve_assignment(problem)
    placed = {job: a.option for job, a in plan.assignments.items()}
    assert (placed[2].offer.cloud, placed[2].offer.region) == ("aws", "us-east-1")
    assert placed[2].egress_cost_micros == 0
    assert placed[1].offer.cloud == "gcp"
    assert plan.assignments[2].placement.egress_cost_micros == 0
