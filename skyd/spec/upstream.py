"""A pipeline stage's inputs as they come from the stage before it: where that stage ran and
how much of what it wrote the next one reads (SkyPilot's chain DAG: a child's inputs flow
from its parent's location). Set by the scheduler when the stage before SUCCEEDED; priced by
data-aware placement as egress from there."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

STORED_MODEL = ConfigDict(frozen=True, extra="forbid", strict=True)


class UpstreamData(BaseModel):
    """`gigabytes`: URL (as the stages name it) → GB read by this stage from stage `stage`,
    which ran as job `job_id` in `cloud`/`region` (or is planned there)."""

    model_config = STORED_MODEL

    stage: int
    job_id: int | None = None  # None: `skyctl optimize`'s plan of the stage before
    cloud: str
    region: str
    gigabytes: Mapping[str, float] = Field(default_factory=dict)
