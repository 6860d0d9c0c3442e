"""Operator commands: `orphans` (what reconcile found running without a record)."""

from __future__ import annotations

import argparse
from typing import TextIO

from skyctl.client import DaemonClient
from skyctl.render import format_table, format_timestamp, write_json


def orphans(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    report = client.request("GET", "/v1/orphans")
    if args.json:
        write_json(out, report)
        return 0
    rows = [
        [o["provider"], o["instance_id"], o["state"], str(o["job_id"] or "-"), o["action"]]
        for o in report.get("orphans", [])
    ]
    when = format_timestamp(report.get("at")) if report.get("at") else "never"
    out.write(f"last reconcile: {when}\n")
    if rows:
        out.write(format_table(["PROVIDER", "INSTANCE", "STATE", "JOB", "ACTION"], rows) + "\n")
    else:
        out.write("no orphans: every skyd-tagged instance is accounted for\n")
    for provider, message in sorted((report.get("errors") or {}).items()):
        err.write(f"skyctl: warning: could not list {provider}: {message}\n")
    return 0
