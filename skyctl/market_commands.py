"""The market commands and their arguments: `prices` (offers, price history), `optimize`."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any, TextIO

from skyctl.client import DaemonClient
from skyctl.job_commands import read_task_file
from skyctl.optional_endpoint import call_optional
from skyctl.render import (
    EMPTY,
    document_text,
    format_money,
    format_relative,
    format_table,
    format_timestamp,
    json_flag,
    parse_time,
    write_json,
)

if TYPE_CHECKING:
    from skyctl.client import QueryValue


def prices_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--gpu", metavar="NAME", help="accelerator, e.g. A100 or A100:8")
    sub.add_argument("--cloud", metavar="CLOUD", help="only this cloud")
    sub.add_argument("--region", metavar="REGION", help="only this region")
    market = sub.add_mutually_exclusive_group()
    market.add_argument(
        "--spot", dest="spot", action="store_const", const=True, help="spot prices only"
    )
    market.add_argument(
        "--on-demand", dest="spot", action="store_const", const=False, help="on-demand only"
    )
    sub.add_argument(
        "--all-regions", action="store_true", help="every region, not only the cheapest"
    )
    sub.add_argument(
        "--history",
        metavar="OFFERING",
        help="price history of one offering (cloud/region/zone/type)",
    )
    json_flag(sub)


def optimize_arguments(sub: argparse.ArgumentParser) -> None:
    from skyctl.task_overrides import add_override_arguments

    sub.add_argument("file", metavar="FILE", help="task YAML (- for standard input)")
    json_flag(sub)
    add_override_arguments(sub, with_name=True)


def prices(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Cheapest current offers per accelerator, or one offering's price history."""
    if args.history:
        payload = call_optional(
            client,
            "prices --history",
            "GET",
            "/v1/prices/history",
            query={"offering": args.history},
            resource_may_be_missing=True,
        )
        if not args.json and isinstance(payload, dict) and "history" in payload:
            out.write(history_text(payload, time.time()) + "\n")
            return 0
    else:
        query: dict[str, QueryValue] = {
            "gpu": args.gpu,
            "cloud": args.cloud,
            "region": args.region,
            "spot": args.spot,
            "all_regions": True if args.all_regions else None,
        }
        payload = call_optional(client, "prices", "GET", "/v1/prices", query=query)
        if not args.json and isinstance(payload, list):
            out.write(_prices_table(payload, spot=bool(args.spot)) + "\n")
            return 0
    _write(out, payload, args.json)
    return 0


def _prices_table(rows: list[dict[str, object]], *, spot: bool) -> str:
    if not rows:
        return "no offerings match"
    header = ["GPU", "QTY", "CLOUD", "REGION", "INSTANCE", "vCPU", "MEM GiB", "$/h", "SPOT $/h"]
    body = [
        [
            str(r.get("accelerator_name") or "-"),
            str(r.get("accelerator_count")),
            str(r.get("cloud")),
            str(r.get("region")),
            str(r.get("instance_type")),
            f"{r.get('vcpus'):g}",
            f"{r.get('memory_gib'):g}",
            format_money(r.get("price")),  # type: ignore[arg-type]
            format_money(r.get("spot_price")),  # type: ignore[arg-type]
        ]
        for r in rows
    ]
    note = "cheapest spot offering per GPU and cloud" if spot else "cheapest on-demand offering"
    return format_table(header, body) + f"\n({note}; --all-regions for every region)"


def history_text(payload: dict[str, Any], now: float) -> str:
    """One offering, then its observed spot prices, availability and preemption rates."""
    offer = payload.get("offering") or {}
    where = "/".join(str(offer[k]) for k in ("cloud", "region", "zone") if offer.get(k))
    gpus = (
        f"{offer.get('accelerator_name')}:{offer.get('accelerator_count')}, "
        if offer.get("accelerator_name")
        else ""
    )
    lines = [
        f"{where} {offer.get('instance_type')} ({gpus}{offer.get('vcpus', 0):g} vCPU, "
        f"{offer.get('memory_gib', 0):g} GiB): on-demand {format_money(offer.get('price'))}/h, "
        f"spot {format_money(offer.get('spot_price'))}/h now "
        f"(catalog {format_money(payload.get('catalog_spot_price'))}/h)"
    ]
    history = payload.get("history") or []
    if not history:
        lines.append("No observations yet.")
        return "\n".join(lines)
    rows = [
        [
            format_timestamp(parse_time(h.get("at"))),
            format_relative(parse_time(h.get("at")), now),
            format_money(h.get("spot_price")),
            {True: "yes", False: "no"}.get(h.get("available"), "-"),
            EMPTY if h.get("preemptions_per_hour") is None else f"{h['preemptions_per_hour']:g}",
            str(h.get("source") or EMPTY),
        ]
        for h in history
    ]
    headers = ["TIME", "AGO", "SPOT $/h", "AVAILABLE", "PREEMPTIONS/h", "SOURCE"]
    lines.append(format_table(headers, rows))
    return "\n".join(lines)


def optimize(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Where a task would run and what it would cost, without submitting it."""
    return explain_file(args, client, out, err)


def explain_file(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """`optimize FILE` (and `submit|launch --dryrun`): the placement and why.

    Exit status, the same with and without --json: 0 when the task would be placed (on an
    enabled provider, or on a cloud whose provider is not enabled here), 1 when it would
    not, or the daemon refused the file.
    """
    from skyctl.task_overrides import overrides_from

    text, base_dir = read_task_file(args.file)
    body: dict[str, object] = {
        "task_yaml": text,
        "base_dir": base_dir,
        "source": "<stdin>" if args.file == "-" else args.file,
    }
    overrides = overrides_from(args)
    if getattr(args, "name", None) and getattr(args, "command", "") == "optimize":
        overrides = {**(overrides or {}), "name": args.name}
    if overrides:
        body["overrides"] = overrides
    payload = call_optional(client, "optimize", "POST", "/v1/optimize", body=body)
    status = 0 if placed(payload) else 1
    if args.json or not isinstance(payload, dict):
        _write(out, payload, args.json)
        return status
    stages = payload.get("stages")
    if isinstance(stages, list):
        for index, stage in enumerate(stages):
            name = stage.get("name") if isinstance(stage, dict) else None
            out.write(f"Stage {index + 1}{f' ({name})' if name else ''}:\n")
            out.write(_explain_text(stage if isinstance(stage, dict) else {}) + "\n\n")
    else:
        out.write(_explain_text(payload) + "\n")
    for warning in payload.get("warnings") or []:
        err.write(f"skyctl: warning: {warning}\n")
    return status


def placed(payload: object) -> bool:
    """True when the answer names a placement for the task (every stage of a pipeline)."""
    if not isinstance(payload, dict):
        return False
    stages = payload.get("stages")
    if isinstance(stages, list):
        return bool(stages) and all(placed(stage) for stage in stages)
    return bool(payload.get("chosen") or payload.get("if_all_providers_enabled"))


EXPLAIN_ROWS = 25


def _explain_text(payload: dict[str, object]) -> str:
    candidates = payload.get("candidates")
    rows = candidates if isinstance(candidates, list) else []
    # data-aware placement: the split of each expected cost, when the task moves data
    moves_data = any(isinstance(r, dict) and r.get("egress_cost") for r in rows)
    header = [
        "",
        "CLOUD",
        "REGION",
        "ZONE",
        "INSTANCE",
        "GPUS",
        "MARKET",
        "$/h",
        "EXP. COST",
        *(["COMPUTE", "EGRESS"] if moves_data else []),
        "EXP. h",
        "WHY NOT",
    ]
    body = []
    for r in rows[:EXPLAIN_ROWS]:
        gpus = (
            f"{r.get('accelerator_name')}:{r.get('accelerator_count')}"
            if r.get("accelerator_name")
            else "-"
        )
        excluded = r.get("excluded")
        note = r.get("note") or ""
        body.append(
            [
                "*" if r.get("chosen") else "",
                str(r.get("cloud")),
                str(r.get("region")),
                str(r.get("zone") or "-"),
                str(r.get("instance_type")),
                gpus,
                "spot" if r.get("spot") else "on-demand",
                format_money(r.get("hourly_price")),
                format_money(r.get("expected_cost")),
                *(
                    [format_money(r.get("compute_cost")), format_money(r.get("egress_cost"))]
                    if moves_data
                    else []
                ),
                f"{float(r.get('expected_hours') or 0):.1f}",
                (str(excluded) + (f": {note}" if note else "")) if excluded else str(note),
            ]
        )
    total = payload.get("total_candidates", len(rows))
    lines = [format_table(header, body)]
    if isinstance(total, int) and total > EXPLAIN_ROWS:
        lines.append(f"... {total - EXPLAIN_ROWS} more candidates (--json shows them)")
    lines.append("")
    lines.extend(_excluded_lines(payload.get("excluded_counts")))
    task = payload.get("task")
    if isinstance(task, dict):
        for tier, note in (("disk_tier", "disk"), ("network_tier", "network")):
            if task.get(note):
                lines.append(f"{tier} {task.get(tier)} there: {task[note]}")
    lines.extend(_data_lines(payload.get("data")))
    lines.append(
        ("Chosen: " if payload.get("chosen") else "Not placed: ") + str(payload.get("reason"))
    )
    hypothetical = payload.get("if_all_providers_enabled")
    if isinstance(hypothetical, dict):
        market = "spot" if hypothetical.get("spot") else "on-demand"
        where = " ".join(
            str(hypothetical.get(k) or "") for k in ("cloud", "region", "zone", "instance_type")
        )
        price = format_money(hypothetical.get("hourly_price"))
        cost = format_money(hypothetical.get("expected_cost"))
        lines.append(
            f"With every provider enabled it would run on {' '.join(where.split())} {market} "
            f"at {price}/h, expected {cost} ({hypothetical.get('reason')})"
        )
    return "\n".join(lines)


# what a reason means, for the ones whose name alone does not say what to change
_REASON_MEANING = {
    "resources_mismatch": "cpus/memory: a cloud instance type must have exactly the amount "
    "asked, as SkyPilot reads it (write N+ for at least N); a node of local, ssh, slurm or "
    "kubernetes must have at least that much",
    "provider_disabled": "its provider is not enabled in this daemon's config",
    "unrequested_accelerator": "the task asks for no GPU and a machine without one fits",
    "no_faster_network": "network_tier: best, and skyd cannot give this offering a faster "
    "network (EFA on AWS, gVNIC + Tier_1 on GCP, accelerated networking on Azure); lab pools "
    "(local, ssh, slurm, kubernetes) keep their own network and are not left out",
}


def _excluded_lines(counts: object) -> list[str]:
    """One line per reason candidates were left out, most common first."""
    if not isinstance(counts, dict):
        return []
    lines = []
    for reason, count in counts.items():
        meaning = _REASON_MEANING.get(str(reason))
        lines.append(f"Not chosen: {count} {reason}" + (f" ({meaning})" if meaning else ""))
    return lines


def _data_lines(moves: object) -> list[str]:
    """The task's buckets as placement priced them: where, how big, how known."""
    if not isinstance(moves, list) or not moves:
        return []
    lines = []
    for move in moves:
        if not isinstance(move, dict):
            continue
        where = f"{move.get('cloud')}/{move.get('region') or '?'}"
        verb = "reads" if move.get("direction") == "in" else "writes"
        size = float(move.get("gigabytes") or 0)
        line = f"Data: {verb} {move.get('url')} ({where}), {size:g} GB from {move.get('size_from')}"
        if move.get("note"):
            line += f"; {move['note']}"
        lines.append(line)
    return lines


def _write(out: TextIO, payload: object, as_json: bool) -> None:
    if as_json:
        write_json(out, payload)
    else:
        out.write(document_text(payload) + "\n")
