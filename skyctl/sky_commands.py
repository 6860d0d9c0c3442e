"""SkyPilot's habits: `status` (clusters and managed jobs) and `show-gpus` (what GPUs cost where).

`cost-report` and `jobs launch|queue|cancel|logs` are aliases declared in skyctl's command table.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from skyctl.client import DaemonClient
from skyctl.optional_endpoint import call_optional
from skyctl.render import EMPTY, format_money, format_table, write_json

ACTIVE_JOB_LIMIT = 1000


def status_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--all", action="store_true", help="include torn-down clusters and finished jobs"
    )
    sub.add_argument("--json", action="store_true", help="print JSON for scripts")


def status(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Clusters, then managed jobs: what `sky status` and `sky jobs queue` show together."""
    query = {"all": True} if args.all else None
    clusters_payload = call_optional(client, "clusters", "GET", "/v1/clusters", query=query)
    clusters = clusters_payload.get("clusters", []) if isinstance(clusters_payload, dict) else []
    jobs, more = client.list_jobs(include_terminal=args.all, limit=ACTIVE_JOB_LIMIT)
    if args.json:
        write_json(out, {"clusters": clusters, "jobs": jobs})
        return 0
    from skyctl.cluster_commands import clusters_table
    from skyctl.job_view import queue_table

    now = time.time()
    out.write("Clusters\n")
    if clusters:
        out.write(clusters_table(clusters) + "\n")
    else:
        out.write("  none; start one with `skyctl launch -c NAME task.yaml`\n")
    out.write("\nManaged jobs\n")
    if jobs:
        out.write(queue_table(jobs, now) + "\n")
    else:
        which = "" if args.all else "active "
        out.write(f"  no {which}jobs; submit one with `skyctl jobs launch task.yaml`\n")
    if more is not None:
        err.write(f"(showing the newest {len(jobs)} jobs; `skyctl queue --limit N` for more)\n")
    return 0


def show_gpus_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "gpu",
        nargs="?",
        metavar="GPU",
        help="one accelerator (A100 or A100:8): every cloud and region offering it",
    )
    sub.add_argument("--cloud", metavar="CLOUD", help="only this cloud")
    sub.add_argument("--region", metavar="REGION", help="only this region")
    sub.add_argument(
        "--all-regions", action="store_true", help="cheapest per region, not per cloud"
    )
    sub.add_argument("--json", action="store_true", help="print JSON for scripts")


def show_gpus(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Accelerators, their counts per machine, and the cheapest on-demand and spot prices."""
    per_region = bool(args.gpu) or args.all_regions
    markets = {}
    for spot in (False, True):
        query = {
            "gpu": args.gpu,
            "cloud": args.cloud,
            "region": args.region,
            "spot": spot,
            "all_regions": True if per_region else None,
        }
        answer = call_optional(client, "show-gpus", "GET", "/v1/prices", query=query)
        markets[spot] = answer if isinstance(answer, list) else []
    rows = merge_markets(markets[False], markets[True], per_region=per_region)
    if args.json:
        write_json(out, rows)
        return 0
    if not rows:
        out.write("No accelerators match.\n")
        return 0
    if args.gpu or args.all_regions:
        out.write(offerings_table(rows) + "\n")
    else:
        out.write(summary_table(rows) + "\n")
        out.write("(`skyctl show-gpus A100` lists every cloud and region offering one)\n")
    return 0


def merge_markets(
    on_demand: list[dict[str, Any]], spot: list[dict[str, Any]], *, per_region: bool
) -> list[dict[str, Any]]:
    """One row per (accelerator, count, cloud[, region]) with its cheapest price in each market."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for market, offers in (("on_demand", on_demand), ("spot", spot)):
        for offer in offers:
            if not offer.get("accelerator_name"):
                continue
            key = (
                offer.get("accelerator_name"),
                offer.get("accelerator_count"),
                offer.get("cloud"),
                offer.get("region") if per_region else None,
            )
            row = merged.setdefault(
                key,
                {
                    "accelerator": offer.get("accelerator_name"),
                    "count": offer.get("accelerator_count"),
                    "cloud": offer.get("cloud"),
                    "region": offer.get("region"),
                    "on_demand": None,
                    "spot": None,
                },
            )
            price = offer.get("spot_price") if market == "spot" else offer.get("price")
            row[market] = None if price is None else {**offer, "hourly_price": price}
    return sorted(
        merged.values(),
        key=lambda r: (
            str(r["accelerator"]),
            r["count"] or 0,
            _price(r["on_demand"]) or _price(r["spot"]) or 0,
            str(r["cloud"]),
        ),
    )


def _price(offer: dict[str, Any] | None) -> float | None:
    return None if offer is None else float(offer["hourly_price"])


def _market_cell(offer: dict[str, Any] | None, region: bool) -> str:
    if offer is None:
        return EMPTY
    where = f" {offer.get('region')}" if region else ""
    return f"{format_money(offer['hourly_price'])}{where}"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """GPU, the counts one machine has, and per cloud the cheapest on-demand and spot price."""
    table = []
    for row in rows:
        table.append(
            [
                str(row["accelerator"]),
                str(row["count"]),
                str(row["cloud"]),
                _market_cell(row["on_demand"], True),
                _market_cell(row["spot"], True),
            ]
        )
    headers = ["GPU", "QTY", "CLOUD", "ON-DEMAND $/h (REGION)", "SPOT $/h (REGION)"]
    return format_table(headers, table)


def offerings_table(rows: list[dict[str, Any]]) -> str:
    """Per cloud and region: the machine, its size, and the on-demand and spot price."""
    table = []
    for row in rows:
        offer = row["on_demand"] or row["spot"] or {}
        spot_type = (row["spot"] or {}).get("instance_type")
        instance = str(offer.get("instance_type") or EMPTY)
        if spot_type and spot_type != instance:
            instance += f" (spot: {spot_type})"
        table.append(
            [
                str(row["accelerator"]),
                str(row["count"]),
                str(row["cloud"]),
                str(row["region"]),
                instance,
                f"{offer.get('vcpus') or 0:g}",
                f"{offer.get('memory_gib') or 0:g}",
                _market_cell(row["on_demand"], False),
                _market_cell(row["spot"], False),
            ]
        )
    headers = ["GPU", "QTY", "CLOUD", "REGION", "INSTANCE", "vCPU", "MEM GiB", "$/h", "SPOT $/h"]
    return format_table(headers, table)
