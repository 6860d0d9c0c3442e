"""The budget commands: `projects`, `budget`, `limits` and `budget-override`, in dollars."""

from __future__ import annotations

import argparse
from typing import Any, TextIO
from urllib.parse import quote

from skyctl.client import DaemonClient
from skyctl.optional_endpoint import call_optional
from skyctl.render import format_money, format_table, json_flag, key_values, write_json


def _segment(text: str) -> str:
    return quote(text, safe="")


def _money_or_none(text: str) -> str | None:
    """`none` (or `off`) clears a budget or limit; anything else is dollars, checked by skyd."""
    return None if text.strip().lower() in ("none", "off", "unlimited") else text


def _budget_cell(value: float | None) -> str:
    return "no budget" if value is None else format_money(value)


# -- projects --------------------------------------------------------------------------------


def projects_arguments(sub: argparse.ArgumentParser) -> None:
    """`projects [add|set|show|members …]`: no action lists them."""
    json_flag(sub)
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="create a project (admins)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--budget", metavar="DOLLARS", help="monthly budget, e.g. 500")
    add.add_argument("--members", metavar="USERS", help="comma-separated users (default: all)")
    change = actions.add_parser("set", help="change a project's monthly budget (admins)")
    change.add_argument("name", metavar="NAME")
    change.add_argument(
        "--budget", metavar="DOLLARS", required=True, help="monthly budget, or 'none'"
    )
    show = actions.add_parser("show", help="a project's budget, spending, members and pools")
    show.add_argument("name", metavar="NAME")
    members = actions.add_parser("members", help="add or remove members (admins)")
    members.add_argument("name", metavar="NAME")
    members.add_argument("--add", metavar="USERS", help="comma-separated users to add")
    members.add_argument("--remove", metavar="USERS", help="comma-separated users to remove")
    for parser in (add, change, show, members):
        json_flag(parser)


def _users(text: str | None) -> list[str]:
    return [u.strip() for u in (text or "").split(",") if u.strip()]


def projects(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    action = getattr(args, "action", None)
    if action is None:
        payload = call_optional(client, "projects", "GET", "/v1/projects")
        if args.json:
            write_json(out, payload)
            return 0
        rows = [
            [
                p["name"],
                _budget_cell(p["monthly_budget"]),
                ", ".join(p["members"]) or "everyone",
            ]
            for p in payload.get("projects", [])
        ]
        out.write(format_table(["PROJECT", "MONTHLY BUDGET", "MEMBERS"], rows) + "\n")
        return 0
    path = f"/v1/projects/{_segment(args.name)}"
    if action == "show":
        payload = call_optional(client, "projects show", "GET", path, resource_may_be_missing=True)
        return _show_project(out, payload, args.json)
    body: dict[str, Any] = {}
    if action == "add":
        if args.budget is not None:
            body["monthly_budget"] = _money_or_none(args.budget)
        if args.members:
            body["members"] = _users(args.members)
    elif action == "set":
        body["monthly_budget"] = _money_or_none(args.budget)
    else:
        if not args.add and not args.remove:
            err.write("skyctl projects members: give --add USERS and/or --remove USERS\n")
            return 2
        body = {"add_members": _users(args.add), "remove_members": _users(args.remove)}
    call_optional(client, f"projects {action}", "POST", path, body=body)
    payload = call_optional(client, "projects show", "GET", path, resource_may_be_missing=True)
    return _show_project(out, payload, args.json)


def _show_project(out: TextIO, project: dict[str, Any], as_json: bool) -> int:
    if as_json:
        write_json(out, project)
        return 0
    percent = project.get("percent")
    spent = format_money(project["spent_this_month"])
    pairs = [
        ("project", project["name"]),
        ("monthly budget", _budget_cell(project["monthly_budget"])),
        ("spent this month", spent + (f" ({percent:g} %)" if percent is not None else "")),
        ("members", ", ".join(project["members"]) or "everyone"),
        ("credit pools", ", ".join(project["pools"]) or "none (cash)"),
    ]
    out.write(key_values(pairs) + "\n")
    return 0


# -- budgets ---------------------------------------------------------------------------------


def budget_arguments(sub: argparse.ArgumentParser) -> None:
    """`budget [set --lab DOLLARS]`: no action shows every budget and this month's spending."""
    json_flag(sub)
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    change = actions.add_parser("set", help="set the whole lab's monthly budget (admins)")
    change.add_argument("--lab", metavar="DOLLARS", required=True, help="dollars, or 'none'")
    json_flag(change)


def budget(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    if getattr(args, "action", None) == "set":
        payload = call_optional(
            client,
            "budget set",
            "POST",
            "/v1/budgets/lab",
            body={"monthly_budget": _money_or_none(args.lab)},
        )
    else:
        payload = call_optional(client, "budget", "GET", "/v1/budgets")
    if args.json:
        write_json(out, payload)
        return 0
    rows = [
        [
            b["label"].removesuffix("'s").removesuffix("'"),
            format_money(b["budget"]),
            format_money(b["spent"]),
            format_money(b["left"]),
            f"{b['percent']:.0f} %",
        ]
        for b in payload.get("budgets", [])
    ]
    if not rows:
        out.write("no budgets are set (admins: skyctl projects set NAME --budget DOLLARS)\n")
        return 0
    out.write(format_table(["BUDGET", "MONTHLY", "SPENT", "LEFT", "USED"], rows) + "\n")
    lines = ", ".join(f"{line * 100:g} %" for line in payload.get("warn_lines", []))
    out.write(
        f"warnings at {lines}; at 100 % running jobs are {payload.get('at_budget', 'held')}"
        f"{'ped' if payload.get('at_budget') == 'stop' else ''}\n"
    )
    return 0


# -- limits ----------------------------------------------------------------------------------


def limits_arguments(sub: argparse.ArgumentParser) -> None:
    """`limits [set USER …]`: no action lists every user's limits."""
    json_flag(sub)
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    change = actions.add_parser("set", help="set a user's limits and monthly budget (admins)")
    change.add_argument("user", metavar="USER", help="user name or uid")
    change.add_argument("--max-gpus", metavar="N", help="GPUs at once, or 'none'")
    change.add_argument("--max-hourly", metavar="DOLLARS", help="$/h at once, or 'none'")
    change.add_argument("--monthly-budget", metavar="DOLLARS", help="dollars a month, or 'none'")
    json_flag(change)


def limits(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    if getattr(args, "action", None) == "set":
        body: dict[str, Any] = {}
        if args.max_gpus is not None:
            raw = _money_or_none(args.max_gpus)
            body["max_gpus"] = None if raw is None else _count(raw)
        if args.max_hourly is not None:
            body["max_hourly"] = _money_or_none(args.max_hourly)
        if args.monthly_budget is not None:
            body["monthly_budget"] = _money_or_none(args.monthly_budget)
        if not body:
            err.write("skyctl limits set: give --max-gpus, --max-hourly and/or --monthly-budget\n")
            return 2
        call_optional(client, "limits set", "POST", f"/v1/limits/{_segment(args.user)}", body=body)
    payload = call_optional(client, "limits", "GET", "/v1/limits")
    if args.json:
        write_json(out, payload)
        return 0
    rows = [
        [
            limit["user"],
            "—" if limit["max_gpus"] is None else str(limit["max_gpus"]),
            "—" if limit["max_hourly"] is None else format_money(limit["max_hourly"]) + "/h",
            _budget_cell(limit.get("monthly_budget")),
        ]
        for limit in payload.get("limits", [])
    ]
    if not rows:
        out.write("no user limits are set\n")
        return 0
    out.write(format_table(["USER", "MAX GPUS", "MAX $/H", "MONTHLY BUDGET"], rows) + "\n")
    return 0


def _count(text: str) -> int | str:
    """A whole number when it is one; else the text, so skyd names the field in its error."""
    return int(text) if text.isdigit() else text


# -- override --------------------------------------------------------------------------------


def override_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("job", metavar="JOB", help="the job's id")
    sub.add_argument("--note", default="", help="why (kept in the audit log)")
    json_flag(sub)


def override(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    payload = call_optional(
        client,
        "budget-override",
        "POST",
        f"/v1/jobs/{_segment(args.job)}/budget-override",
        body={"note": args.note},
        resource_may_be_missing=True,
    )
    if args.json:
        write_json(out, payload)
    else:
        out.write(f"job {args.job} may now start and run past budgets and limits\n")
    return 0
