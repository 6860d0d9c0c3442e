"""HTTP routes for credits, costs, projects, user limits and budget overrides (see docs/api.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from skyd.accounting import Accountant, CreditPool, Project, UserLimit
from skyd.accounting.inputs import since_moment
from skyd.accounting.reports import as_csv, user_label
from skyd.api.accounting_schemas import (
    Budgets,
    CostReport,
    CostsQuery,
    Credits,
    LabBudgetChange,
    LimitChange,
    Limits,
    LimitView,
    NewPool,
    OverrideNote,
    OverridePath,
    OverrideView,
    PoolChange,
    PoolPath,
    PoolView,
    ProjectChange,
    ProjectDetail,
    ProjectPath,
    Projects,
    ProjectView,
    TopUp,
    UserPath,
)
from skyd.api.contract import endpoint
from skyd.api.identity import caller_of
from skyd.api.jsonio import json_response
from skyd.api.validation import (
    INT64_MAX,
    BadRequest,
    Strict,
    json_body,
    path_params,
    query_params,
    uid_of,
)
from skyd.identity import Caller
from skyd.store import jobs as job_store

ACCOUNTANT: web.AppKey[Accountant] = web.AppKey("accountant", Accountant)
ACCOUNTING_ADMIN_GROUP: web.AppKey[str] = web.AppKey("accounting_admin_group", str)


def announcing(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], accountant: Accountant
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """After a successful change of pools, budgets or limits, say so on the event bus: the
    planner re-optimizes (credit-aware placement) and held jobs are looked at again."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if response.status < 300:
            event = job_store.record_event(
                accountant.store,
                None,
                now=accountant.clock.now(),
                kind="credit",
                reason=f"accounting changed: {request.method} {request.path}",
            )
            accountant.bus.publish(event)
        return response

    return handle


def add_accounting_routes(app: web.Application, accountant: Accountant, admin_group: str) -> None:
    """Serve the accounting API from `app` (whose middleware turns SkydErrors into JSON)."""
    app[ACCOUNTANT] = accountant
    app[ACCOUNTING_ADMIN_GROUP] = admin_group
    app.add_routes(
        [
            web.get("/v1/credits", list_credits),
            web.post("/v1/credits", announcing(add_pool, accountant)),
            web.post("/v1/credits/{pool}", announcing(set_pool, accountant)),
            web.post("/v1/credits/{pool}/topup", announcing(top_up_pool, accountant)),
            web.post("/v1/credits/{pool}/retire", announcing(retire_pool, accountant)),
            web.get("/v1/costs", costs),
            web.get("/v1/projects", list_projects),
            web.get("/v1/projects/{name}", show_project),
            web.post("/v1/projects/{name}", announcing(set_project, accountant)),
            web.get("/v1/budgets", list_budgets),
            web.post("/v1/budgets/lab", announcing(set_lab_budget, accountant)),
            web.get("/v1/limits", list_limits),
            web.post("/v1/limits/{user}", announcing(set_limit, accountant)),
            web.post("/v1/jobs/{job_id}/budget-override", announcing(override_job, accountant)),
        ]
    )


def _caller(request: web.Request) -> Caller:
    return caller_of(request, request.app[ACCOUNTING_ADMIN_GROUP])


async def _body(request: web.Request, model: type[Strict]) -> dict[str, Any]:
    """The body checked by `model`, as the fields the caller gave (the accountant checks
    values against the books)."""
    return (await json_body(request, model)).model_dump(exclude_unset=True)


def _pool_ref(request: web.Request) -> str:
    ref = path_params(request, PoolPath).pool
    if ref.isdigit() and int(ref) > INT64_MAX:
        raise BadRequest(f"pool: {ref[:30]!r} is not a pool id (too large) or name", "pool")
    return ref


_ADMIN = (400, 403)


def _pool_view(accountant: Accountant, pool: CreditPool) -> dict[str, Any]:
    for row in accountant.credits()["pools"]:
        if row["id"] == pool.id:
            return dict(row)
    raise AssertionError(f"pool {pool.id} vanished")  # the store just returned it


def _project_view(project: Project) -> dict[str, Any]:
    budget = project.monthly_budget_micros
    return {
        "name": project.name,
        "monthly_budget": None if budget is None else budget / 1_000_000,
        "members": [user_label(uid) for uid in project.members],
    }


def _limit_view(limit: UserLimit) -> dict[str, Any]:
    hourly = limit.max_hourly_micros
    budget = limit.monthly_budget_micros
    return {
        "user": user_label(limit.uid),
        "uid": limit.uid,
        "max_gpus": limit.max_gpus,
        "max_hourly": None if hourly is None else hourly / 1_000_000,
        "monthly_budget": None if budget is None else budget / 1_000_000,
    }


@endpoint(
    "GET", "/v1/credits", "Credit pools with balance, burn and run-out", tag="accounting",
    response=Credits, errors=(),
)  # fmt: skip
async def list_credits(request: web.Request) -> web.Response:
    _caller(request)  # identify, so an unknown peer is refused like everywhere else
    return json_response(request.app[ACCOUNTANT].credits())


@endpoint(
    "POST", "/v1/credits", "Add a credit pool (admins)", tag="accounting", body=NewPool,
    response=PoolView, status=201, errors=(*_ADMIN, 409),
)  # fmt: skip
async def add_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.admin.add_pool(caller, await _body(request, NewPool))
    return json_response(_pool_view(accountant, pool), status=201)


@endpoint(
    "POST", "/v1/credits/{pool}", "Change a pool's total, dates, account or region (admins)",
    tag="accounting", path_params=PoolPath, body=PoolChange, response=PoolView,
    errors=(*_ADMIN, 404),
)  # fmt: skip
async def set_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.admin.set_pool(caller, _pool_ref(request), await _body(request, PoolChange))
    return json_response(_pool_view(accountant, pool))


@endpoint(
    "POST", "/v1/credits/{pool}/topup", "Add to a pool (admins)", tag="accounting",
    path_params=PoolPath, body=TopUp, response=PoolView, errors=(*_ADMIN, 404),
)  # fmt: skip
async def top_up_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.admin.top_up_pool(caller, _pool_ref(request), await _body(request, TopUp))
    return json_response(_pool_view(accountant, pool))


@endpoint(
    "POST", "/v1/credits/{pool}/retire", "Stop a pool paying from now on (admins)",
    tag="accounting", path_params=PoolPath, response=PoolView, errors=(*_ADMIN, 404),
)  # fmt: skip
async def retire_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.admin.retire_pool(caller, _pool_ref(request))
    return json_response(_pool_view(accountant, pool))


@endpoint(
    "GET", "/v1/costs", "Spending grouped by user, project, cloud, pool or job",
    tag="accounting", query=CostsQuery, response=CostReport,
    extra_content={"text/csv": {"schema": {"type": "string"}}},
)  # fmt: skip
async def costs(request: web.Request) -> web.Response:
    caller = _caller(request)
    query = query_params(request, CostsQuery)
    by = query.by
    accountant = request.app[ACCOUNTANT]
    since = None
    if query.since:
        since = since_moment("since", query.since, accountant.clock.now())
    rows = accountant.costs(caller, by=by, since=since)
    if query.format == "csv":
        return web.Response(text=as_csv(rows), content_type="text/csv")
    total = sum(int(r["amount_micros"]) for r in rows)
    return json_response(
        {"by": by, "since": since, "rows": rows, "total": total / 1_000_000, "currency": "USD"}
    )


@endpoint(
    "GET", "/v1/projects", "Projects with monthly budget and members", tag="accounting",
    response=Projects, errors=(),
)  # fmt: skip
async def list_projects(request: web.Request) -> web.Response:
    _caller(request)
    projects = request.app[ACCOUNTANT].projects()
    return json_response({"projects": [_project_view(p) for p in projects]})


@endpoint(
    "POST", "/v1/projects/{name}", "Create or change a project (admins)", tag="accounting",
    path_params=ProjectPath, body=ProjectChange, response=ProjectView, errors=_ADMIN,
)  # fmt: skip
async def set_project(request: web.Request) -> web.Response:
    caller = _caller(request)
    name = path_params(request, ProjectPath).name
    body = await _body(request, ProjectChange)
    for key in ("members", "add_members", "remove_members"):
        if body.get(key) is not None:
            body[key] = [uid_of(key, str(m)) for m in body[key]]
    project = request.app[ACCOUNTANT].admin.set_project(caller, name, body)
    return json_response(_project_view(project))


@endpoint(
    "GET", "/v1/projects/{name}", "A project's budget, spending this month, members and pools",
    tag="accounting", path_params=ProjectPath, response=ProjectDetail, errors=(400,),
)  # fmt: skip
async def show_project(request: web.Request) -> web.Response:
    _caller(request)
    name = path_params(request, ProjectPath).name
    return json_response(request.app[ACCOUNTANT].project_view(name))


@endpoint(
    "GET", "/v1/budgets", "Every monthly budget (projects, users, the lab) and its spending",
    tag="accounting", response=Budgets, errors=(),
)  # fmt: skip
async def list_budgets(request: web.Request) -> web.Response:
    _caller(request)
    return json_response(request.app[ACCOUNTANT].budgets())


@endpoint(
    "POST", "/v1/budgets/lab", "Set or clear the whole lab's monthly budget (admins)",
    tag="accounting", body=LabBudgetChange, response=Budgets, errors=_ADMIN,
)  # fmt: skip
async def set_lab_budget(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    accountant.admin.set_lab_budget(caller, await _body(request, LabBudgetChange))
    return json_response(accountant.budgets())


@endpoint(
    "GET", "/v1/limits", "Per-user limits", tag="accounting", response=Limits, errors=(),
)  # fmt: skip
async def list_limits(request: web.Request) -> web.Response:
    _caller(request)
    limits = request.app[ACCOUNTANT].user_limits()
    return json_response({"limits": [_limit_view(limit) for limit in limits]})


@endpoint(
    "POST", "/v1/limits/{user}", "Set a user's GPU and hourly limits (admins)",
    tag="accounting", path_params=UserPath, body=LimitChange, response=LimitView,
    errors=_ADMIN,
)  # fmt: skip
async def set_limit(request: web.Request) -> web.Response:
    caller = _caller(request)
    uid = uid_of("user", path_params(request, UserPath).user)
    body = await _body(request, LimitChange)
    limit = request.app[ACCOUNTANT].admin.set_user_limit(caller, str(uid), body)
    return json_response(_limit_view(limit))


@endpoint(
    "POST", "/v1/jobs/{job_id}/budget-override", "Exempt a job from budgets and limits (admins)",
    tag="accounting", path_params=OverridePath, body=OverrideNote, response=OverrideView,
    errors=(*_ADMIN, 404),
)  # fmt: skip
async def override_job(request: web.Request) -> web.Response:
    caller = _caller(request)
    job_id = path_params(request, OverridePath).job_id
    note = (await json_body(request, OverrideNote)).note
    request.app[ACCOUNTANT].admin.override_job(caller, job_id, note)
    return json_response({"job_id": job_id, "override": True})
