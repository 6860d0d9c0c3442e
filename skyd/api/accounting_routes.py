"""HTTP routes for credits, costs, projects, user limits and budget overrides (see docs/api.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from skyd.accounting import Accountant, AccountingInputError, CreditPool, Project, UserLimit
from skyd.accounting.inputs import since_moment
from skyd.accounting.reports import GROUPINGS, as_csv, user_label
from skyd.api.identity import caller_of
from skyd.scheduler.service import Caller
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
            web.post("/v1/projects/{name}", announcing(set_project, accountant)),
            web.get("/v1/limits", list_limits),
            web.post("/v1/limits/{user}", announcing(set_limit, accountant)),
            web.post("/v1/jobs/{job_id}/budget-override", announcing(override_job, accountant)),
        ]
    )


def _caller(request: web.Request) -> Caller:
    return caller_of(request, request.app[ACCOUNTING_ADMIN_GROUP])


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AccountingInputError(f"body: not valid JSON ({exc})", "body") from None
    if not isinstance(body, dict):
        raise AccountingInputError("body: expected a JSON object", "body")
    return body


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
    return {
        "user": user_label(limit.uid),
        "uid": limit.uid,
        "max_gpus": limit.max_gpus,
        "max_hourly": None if hourly is None else hourly / 1_000_000,
    }


async def list_credits(request: web.Request) -> web.Response:
    _caller(request)  # identify, so an unknown peer is refused like everywhere else
    return web.json_response(request.app[ACCOUNTANT].credits())


async def add_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.add_pool(caller, await _body(request))
    return web.json_response(_pool_view(accountant, pool), status=201)


async def set_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.set_pool(caller, request.match_info["pool"], await _body(request))
    return web.json_response(_pool_view(accountant, pool))


async def top_up_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.top_up_pool(caller, request.match_info["pool"], await _body(request))
    return web.json_response(_pool_view(accountant, pool))


async def retire_pool(request: web.Request) -> web.Response:
    caller = _caller(request)
    accountant = request.app[ACCOUNTANT]
    pool = accountant.retire_pool(caller, request.match_info["pool"])
    return web.json_response(_pool_view(accountant, pool))


async def costs(request: web.Request) -> web.Response:
    caller = _caller(request)
    query = request.query
    by = query.get("by") or "user"
    if by not in GROUPINGS:
        raise AccountingInputError(f"by: {by!r} is not one of {', '.join(GROUPINGS)}", "by")
    fmt = query.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise AccountingInputError(f"format: {fmt!r} is not json or csv", "format")
    accountant = request.app[ACCOUNTANT]
    since = None
    if query.get("since"):
        since = since_moment("since", query["since"], accountant.clock.now())
    rows = accountant.costs(caller, by=by, since=since)
    if fmt == "csv":
        return web.Response(text=as_csv(rows), content_type="text/csv")
    total = sum(int(r["amount_micros"]) for r in rows)
    return web.json_response(
        {"by": by, "since": since, "rows": rows, "total": total / 1_000_000, "currency": "USD"}
    )


async def list_projects(request: web.Request) -> web.Response:
    _caller(request)
    projects = request.app[ACCOUNTANT].projects()
    return web.json_response({"projects": [_project_view(p) for p in projects]})


async def set_project(request: web.Request) -> web.Response:
    caller = _caller(request)
    project = request.app[ACCOUNTANT].set_project(
        caller, request.match_info["name"], await _body(request)
    )
    return web.json_response(_project_view(project))


async def list_limits(request: web.Request) -> web.Response:
    _caller(request)
    limits = request.app[ACCOUNTANT].user_limits()
    return web.json_response({"limits": [_limit_view(limit) for limit in limits]})


async def set_limit(request: web.Request) -> web.Response:
    caller = _caller(request)
    limit = request.app[ACCOUNTANT].set_user_limit(
        caller, request.match_info["user"], await _body(request)
    )
    return web.json_response(_limit_view(limit))


async def override_job(request: web.Request) -> web.Response:
    caller = _caller(request)
    raw = request.match_info["job_id"]
    if not raw.isdigit():
        raise AccountingInputError(f"job_id: must be a number, got {raw!r}", "job_id")
    body = await _body(request)
    note = body.get("note", "")
    if not isinstance(note, str):
        raise AccountingInputError("note: expected a string", "note")
    request.app[ACCOUNTANT].override_job(caller, int(raw), note)
    return web.json_response({"job_id": int(raw), "override": True})
