"""The market commands: `prices` (current offers and price history) and `optimize` (dry run)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from skyctl.client import DaemonClient
from skyctl.job_commands import read_task_file
from skyctl.optional_endpoint import call_optional
from skyctl.render import document_text, write_json

if TYPE_CHECKING:
    from skyctl.client import QueryValue


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
    else:
        query: dict[str, QueryValue] = {
            "gpu": args.gpu,
            "cloud": args.cloud,
            "region": args.region,
            "spot": args.spot,
            "all_regions": True if args.all_regions else None,
        }
        payload = call_optional(client, "prices", "GET", "/v1/prices", query=query)
    _write(out, payload, args.json)
    return 0


def optimize(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Where a task would run and what it would cost, without submitting it."""
    text, base_dir = read_task_file(args.file)
    payload = call_optional(
        client, "optimize", "POST", "/v1/optimize", body={"task_yaml": text, "base_dir": base_dir}
    )
    _write(out, payload, args.json)
    return 0


def _write(out: TextIO, payload: object, as_json: bool) -> None:
    if as_json:
        write_json(out, payload)
    else:
        out.write(document_text(payload) + "\n")
