"""The money commands: `credits` (pools: list, add, set, top up, retire) and `costs`."""

from __future__ import annotations

import argparse
import csv
import time
from typing import Any, TextIO
from urllib.parse import quote

from skyctl import money_view
from skyctl.client import DaemonClient
from skyctl.optional_endpoint import call_optional
from skyctl.render import document_text, write_json


def credits_arguments(sub: argparse.ArgumentParser) -> None:
    """`credits [--json] [add|set|topup|retire …]`: no action lists the pools."""
    sub.add_argument("--json", action="store_true", help="print JSON for scripts")
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="add a credit pool (admins)")
    add.add_argument("name", metavar="NAME", help="a short name for the pool, e.g. aws-2026")
    add.add_argument("--cloud", required=True, help="the cloud it pays for: aws, gcp, azure, …")
    add.add_argument("--amount", required=True, help="dollars granted, e.g. 50000")
    add.add_argument("--expires", required=True, help="expiry date, e.g. 2026-06-30")
    add.add_argument("--starts", help="first day it may pay (default: now)")
    add.add_argument("--account", help="only instances in this cloud account")
    add.add_argument("--region", help="only instances in this region")
    add.add_argument("--projects", help="only jobs of these projects (comma-separated)")
    add.add_argument("--users", help="only jobs of these users (comma-separated)")
    change = actions.add_parser("set", help="change a pool's total, dates or scope (admins)")
    change.add_argument("pool", metavar="POOL", help="pool name or id")
    change.add_argument("--amount", help="the new total in dollars")
    change.add_argument("--expires", help="the new expiry date")
    change.add_argument("--starts", help="the new start date")
    change.add_argument("--account", help="only instances in this cloud account")
    change.add_argument("--region", help="only instances in this region")
    change.add_argument("--projects", help="only these projects (comma-separated; 'any')")
    change.add_argument("--users", help="only these users (comma-separated; 'any')")
    top_up = actions.add_parser("topup", help="add dollars to a pool (admins)")
    top_up.add_argument("pool", metavar="POOL", help="pool name or id")
    top_up.add_argument("amount", metavar="AMOUNT", help="dollars to add")
    retire = actions.add_parser("retire", help="stop a pool paying from now on (admins)")
    retire.add_argument("pool", metavar="POOL", help="pool name or id")


def credits(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    action = getattr(args, "action", None)
    if action is None:
        payload = call_optional(client, "credits", "GET", "/v1/credits")
    elif action == "add":
        body = _given(args, "name", "cloud", "amount", "expires", "starts", "account", "region")
        body.update(_scopes(args))
        payload = call_optional(client, "credits add", "POST", "/v1/credits", body=body)
    elif action == "set":
        body = _given(args, "amount", "expires", "starts", "account", "region")
        body.update(_scopes(args))
        payload = call_optional(
            client,
            "credits set",
            "POST",
            f"/v1/credits/{_segment(args.pool)}",
            body=body,
            resource_may_be_missing=True,
        )
    elif action == "topup":
        payload = call_optional(
            client,
            "credits topup",
            "POST",
            f"/v1/credits/{_segment(args.pool)}/topup",
            body={"amount": args.amount},
            resource_may_be_missing=True,
        )
    else:
        payload = call_optional(
            client,
            "credits retire",
            "POST",
            f"/v1/credits/{_segment(args.pool)}/retire",
            resource_may_be_missing=True,
        )
    if args.json:
        write_json(out, payload)
    elif isinstance(payload, dict) and "pools" in payload:
        out.write(money_view.credits_text(payload, time.time()) + "\n")
    elif isinstance(payload, dict) and "name" in payload and "amount" in payload:
        out.write(money_view.pool_text(payload, time.time()) + "\n")
    else:
        _write(out, payload, False)
    return 0


def costs_arguments(sub: argparse.ArgumentParser) -> None:
    """`costs [--by KEY] [--since WHEN] [--json|--csv]`."""
    sub.add_argument(
        "--by",
        metavar="KEY",
        choices=("user", "project", "cloud", "pool", "job"),
        help="group by user (default), project, cloud, pool or job",
    )
    sub.add_argument("--since", metavar="WHEN", help="a date (2026-11-01) or a duration (7d)")
    output = sub.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON for scripts")
    output.add_argument("--csv", action="store_true", help="print CSV for spreadsheets")


def cost_report_arguments(sub: argparse.ArgumentParser) -> None:
    """`cost-report`: SkyPilot's name for what each job cost, i.e. `costs --by job`."""
    costs_arguments(sub)
    sub.set_defaults(by="job")


def costs(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    query = {"by": args.by, "since": args.since}
    payload = call_optional(client, "costs", "GET", "/v1/costs", query=query)
    if getattr(args, "csv", False):
        _write_csv(out, payload)
    elif not args.json and isinstance(payload, dict) and "rows" in payload:
        out.write(money_view.costs_text(payload, time.time()) + "\n")
    else:
        _write(out, payload, args.json)
    return 0


def _write_csv(out: TextIO, payload: Any) -> None:
    rows = payload.get("rows", []) if isinstance(payload, dict) else []
    columns = ["key", "name", *(["owner"] if any("owner" in r for r in rows) else [])]
    columns += ["amount", "amount_micros", "data_transfer", "data_transfer_micros"]
    columns.append("data_transfer_bytes")
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _scopes(args: argparse.Namespace) -> dict[str, Any]:
    """`--projects a,b` / `--users u,v` as lists; `any` lifts the scope (null)."""
    body: dict[str, Any] = {}
    for key in ("projects", "users"):
        raw = getattr(args, key, None)
        if raw is None:
            continue
        names = [n.strip() for n in raw.split(",") if n.strip()]
        body[key] = None if names == ["any"] else names
    return body


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _segment(text: str) -> str:
    return quote(text, safe="")


def _write(out: TextIO, payload: object, as_json: bool) -> None:
    if as_json:
        write_json(out, payload)
    else:
        out.write(document_text(payload) + "\n")
