"""`skyctl storage ls` and `skyctl storage delete NAME…` (SkyPilot's `sky storage`): the buckets
skyd created for tasks, found by skyd's labels on each store."""

from __future__ import annotations

import argparse
from typing import TextIO

from skyctl.client import DaemonClient
from skyctl.render import format_table, write_json


def storage_arguments(sub: argparse.ArgumentParser) -> None:
    verbs = sub.add_subparsers(dest="storage_verb", metavar="VERB", required=True)
    listing = verbs.add_parser(
        "ls", help="buckets skyd created: store, region, creator, persistent"
    )
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    delete = verbs.add_parser("delete", help="delete buckets skyd created (and all they hold)")
    delete.add_argument("names", nargs="+", metavar="NAME", help="bucket names as `ls` shows")
    delete.add_argument("--store", choices=("s3", "gcs", "azure", "r2"), help="only this store's")
    delete.add_argument(
        "--force", action="store_true", help="delete persistent buckets too (persistent: true)"
    )


def storage(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    if args.storage_verb == "delete":
        body = {"names": args.names, "force": args.force, "store": args.store}
        answer = client.request("POST", "/v1/storage/delete", body=body)
        for url in answer["deleted"]:
            out.write(f"deleted {url}\n")
        return 0
    listed = client.request("GET", "/v1/storage")
    if args.json:
        write_json(out, listed)
        return 0
    rows = [
        [
            b["name"],
            b["store"],
            b["region"] or "-",
            b["created_by"] or "-",
            f"job {b['job']}" if b["job"] else "-",
            "yes" if b["persistent"] else "no (deleted when its job ends)",
        ]
        for b in listed["buckets"]
    ]
    if rows:
        headers = ["NAME", "STORE", "REGION", "CREATED BY", "BY", "PERSISTENT"]
        out.write(format_table(headers, rows, max_widths={2: 40}) + "\n")
    else:
        out.write("no buckets created by skyd\n")
    for store, why in sorted(listed["unlisted"].items()):
        err.write(f"{store}: not listed ({why})\n")
    return 0
