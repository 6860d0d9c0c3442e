"""Shapes of the market API: prices, price history and placement explain (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from skyd.api.schemas import Flag
from skyd.api.validation import Query, Strict
from skyd.spec import Overrides

Short = Annotated[str, Field(max_length=100)]


class PricesQuery(Query):
    gpu: Short | None = Field(None, description="accelerator, optionally with a count: A100:8")
    cloud: Short | None = None
    region: Short | None = None
    spot: Flag = Field(False, description="the spot market instead of on-demand")
    all_regions: Flag = Field(False, description="the cheapest per region, not per cloud")


class HistoryQuery(Query):
    offering: Annotated[str, Field(max_length=300)] = Field(
        description="an offering key: cloud/region/zone/instance_type"
    )


class OptimizeRequest(Strict):
    task_yaml: str = Field(description="the task file's text (SkyPilot task YAML)")
    base_dir: str | None = Field(None, description="absolute directory for relative paths")
    source: str | None = Field(None, description="the task file's name, for error messages")
    overrides: Overrides | None = Field(
        None, description="command-line overrides (--env, --secret, --gpus, --cloud, …)"
    )


class Offering(BaseModel):
    key: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    accelerator_name: str | None
    accelerator_count: int
    vcpus: float
    memory_gib: float
    price: float | None = Field(description="on-demand dollars per hour")
    spot_price: float | None = Field(description="spot dollars per hour (live if known)")


class Observation(BaseModel):
    at: float
    spot_price: float | None
    available: bool | None
    preemptions_per_hour: float | None
    source: str


class PriceHistory(BaseModel):
    offering: Offering
    catalog_spot_price: float | None
    history: list[Observation]


class Chosen(BaseModel):
    cloud: str
    region: str
    zone: str
    instance_type: str
    accelerator_name: str | None = None
    accelerator_count: int | None = None
    spot: bool
    hourly_price: float
    expected_cost: float
    compute_cost: float | None = Field(None, description="expected cost of the instances")
    egress_cost: float | None = Field(None, description="expected cost of moving the data")
    expected_hours: float | None = None
    provider: str | None = None
    reason: str | None = None


class CandidateRow(BaseModel):
    cloud: str
    region: str
    zone: str
    instance_type: str
    accelerator_name: str | None
    accelerator_count: int
    spot: bool
    hourly_price: float
    expected_hours: float | None
    expected_cost: float
    compute_cost: float = Field(description="instances: price x expected hours x nodes")
    egress_cost: float = Field(description="moving the task's data here (catalogs/egress.csv)")
    preemptions_per_hour: float | None
    excluded: str | None = Field(description="why it was not chosen (null: eligible)")
    note: str | None
    chosen: bool
    alternative: int = Field(description="index of the any_of alternative it serves")
    provider: str | None


class DataMove(BaseModel):
    url: str
    cloud: str
    region: str | None = Field(description="null: not known (priced as another region)")
    gigabytes: float
    direction: str = Field(description="in: read by the task; out: written by it")
    size_from: str = Field(description="inputs, outputs or bucket listing")
    note: str | None = None


class Explain(BaseModel):
    chosen: Chosen | None
    reason: str
    total_candidates: int
    candidates: list[CandidateRow]
    excluded_counts: dict[str, int] = Field(
        default_factory=dict, description="how many candidates each reason excluded, most first"
    )
    if_all_providers_enabled: Chosen | None = Field(
        None, description="where it would go if every cloud's provider were enabled"
    )
    name: str | None = None
    task: dict[str, Any] | None = Field(None, description="what the task asked for, redacted")
    data: list[DataMove] = Field(
        default_factory=list, description="the buckets it reads and writes, where and how big"
    )
    inputs_from: dict[str, Any] | None = Field(
        None,
        description="a pipeline stage: where the stage before runs (stage, job, cloud, region) "
        "and the GB of its outputs this one reads from there",
    )
    warnings: list[str] = Field(
        default_factory=list, description="what would refuse the task at submit"
    )


class PipelineExplain(BaseModel):
    pipeline: str | None
    stages: list[Explain]
    chosen: bool = Field(description="every stage has a place")
    reason: str
    warnings: list[str]
