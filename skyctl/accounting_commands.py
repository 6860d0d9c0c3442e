"""The money commands: `credits` (what is left in each pool) and `costs` (what was spent)."""

from __future__ import annotations

import argparse
from typing import TextIO

from skyctl.client import DaemonClient
from skyctl.optional_endpoint import call_optional
from skyctl.render import document_text, write_json


def credits(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    payload = call_optional(client, "credits", "GET", "/v1/credits")
    _write(out, payload, args.json)
    return 0


def costs(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    query = {"by": args.by, "since": args.since}
    payload = call_optional(client, "costs", "GET", "/v1/costs", query=query)
    _write(out, payload, args.json)
    return 0


def _write(out: TextIO, payload: object, as_json: bool) -> None:
    if as_json:
        write_json(out, payload)
    else:
        out.write(document_text(payload) + "\n")
