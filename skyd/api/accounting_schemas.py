"""Shapes of the accounting API: request bodies, queries and replies (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from skyd.api.validation import Query, RowId, Strict, UserRef

Money = Annotated[
    float | str,
    Field(description='dollars: a JSON number or a decimal string such as "1250.50"'),
]
Moment = Annotated[
    float | str,
    Field(description="YYYY-MM-DD (midnight UTC), an ISO date-time (UTC if naive) or epoch s"),
]
Name = Annotated[str, Field(max_length=200, description="letters, digits, '.', '_' or '-'")]
Text = Annotated[str, Field(max_length=200)]
PoolProjects = Annotated[
    list[Name] | None,
    Field(description="only jobs of these projects may draw the pool (null: any)"),
]
PoolUsers = Annotated[
    list[int | str] | None,
    Field(description="only jobs of these users (names or uids) may draw it (null: any)"),
]


class PoolPath(Query):
    pool: Annotated[
        str,
        Field(
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
            description="a pool's id or name",
        ),
    ]


class ProjectPath(Query):
    name: Name


class UserPath(Query):
    user: UserRef


class OverridePath(Query):
    job_id: RowId


class NewPool(Strict):
    name: Name
    cloud: Name
    amount: Money
    expires: Moment
    starts: Moment | None = None
    account: Text | None = None
    region: Text | None = None
    projects: PoolProjects = None
    users: PoolUsers = None


class PoolChange(Strict):
    amount: Money | None = Field(None, description="the new total")
    expires: Moment | None = None
    starts: Moment | None = None
    account: Text | None = None
    region: Text | None = None
    projects: PoolProjects = None
    users: PoolUsers = None


class TopUp(Strict):
    amount: Money


class ProjectChange(Strict):
    monthly_budget: Money | None = None
    members: list[int | str] | None = Field(
        None, max_length=10_000, description="user names or uids"
    )
    add_members: list[int | str] | None = Field(None, max_length=10_000)
    remove_members: list[int | str] | None = Field(None, max_length=10_000)


class LimitChange(Strict):
    max_gpus: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    max_hourly: Money | None = None
    monthly_budget: Money | None = Field(None, description="dollars a month (null: none)")


class LabBudgetChange(Strict):
    monthly_budget: Money | None = Field(description="the whole lab's dollars a month (null: none)")


class OverrideNote(Strict):
    note: Annotated[str, Field(max_length=2000)] = ""


class CostsQuery(Query):
    by: Literal["user", "project", "cloud", "pool", "job"] = "user"
    since: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="a moment (see Moment) or a duration back from now: 30m, 24h, 7d, 2w"
    )
    format: Literal["json", "csv"] = "json"


class PoolView(BaseModel):
    id: int
    name: str
    cloud: str
    account: str | None
    region: str | None
    state: str = Field(description="active | expired | retired | not started | used up")
    amount: float
    spent: float
    balance: float
    balance_micros: int
    starts_at: str
    expires_at: str
    burn_per_hour: float = Field(description="average over the last 7 days")
    projected_run_out: str | None
    runs_out_before_expiry: bool
    unused_at_expiry: float


class Cash(BaseModel):
    spent: float
    burn_per_hour: float


class Credits(BaseModel):
    pools: list[PoolView]
    cash: Cash
    at: str


class CostRow(BaseModel):
    key: int | str
    name: str
    owner: str | None = Field(None, description="by=job only")
    amount: float
    amount_micros: int
    data_transfer: float = Field(0.0, description="the part of amount that is egress")
    data_transfer_micros: int = 0
    data_transfer_bytes: int = Field(0, description="bytes sent out of clouds (checkpoints)")


class CostReport(BaseModel):
    by: str
    since: float | None
    rows: list[CostRow]
    total: float
    currency: str


class ProjectView(BaseModel):
    name: str
    monthly_budget: float | None
    members: list[str]


class Projects(BaseModel):
    projects: list[ProjectView]


class LimitView(BaseModel):
    user: str
    uid: int
    max_gpus: int | None
    max_hourly: float | None
    monthly_budget: float | None = None


class ProjectDetail(BaseModel):
    name: str
    monthly_budget: float | None
    spent_this_month: float
    percent: float | None
    members: list[str]
    open_to_all: bool
    pools: list[str] = Field(description="credit pools this project's jobs may draw")


class BudgetRow(BaseModel):
    scope: str = Field(description="project:NAME, user:UID or lab")
    label: str
    budget: float
    spent: float
    left: float
    percent: float


class Budgets(BaseModel):
    month_start: str
    at_budget: str
    warn_lines: list[float]
    budgets: list[BudgetRow]


class Limits(BaseModel):
    limits: list[LimitView]


class OverrideView(BaseModel):
    job_id: int
    override: bool
