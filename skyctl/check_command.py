"""`skyctl check` (SkyPilot's `sky check`): which clouds skyd can use now, and what to fix."""

from __future__ import annotations

import argparse
from typing import TextIO

from skyctl.client import DaemonClient
from skyctl.render import write_json


def check(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Exit 0 when every configured cloud answered, 1 when one of them did not."""
    results = client.request("GET", "/v1/check")
    if args.json:
        write_json(out, results)
    else:
        for row in results:
            mark = "enabled" if row["enabled"] else "disabled"
            out.write(f"{row['cloud']}: {mark} — {row['reason']}\n")
            if row.get("fix"):
                out.write(f"    fix: {row['fix']}\n")
        if not any(r["enabled"] for r in results):
            out.write("no cloud is enabled: jobs run only on the lab's own machines\n")
    configured_and_failing = [
        r
        for r in results
        if not r["enabled"] and "not enabled in the daemon's config" not in r["reason"]
    ]
    return 1 if configured_and_failing else 0
