"""The fleet commands: `clusters` (what runs where) and `dashboard` (the live terminal UI)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import TextIO

from skyctl.client import DaemonClient
from skyctl.messages import error_line
from skyctl.optional_endpoint import call_optional
from skyctl.render import document_text, write_json

DASHBOARD_MODULE = "tui"


def clusters(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    payload = call_optional(client, "clusters", "GET", "/v1/clusters")
    if args.json:
        write_json(out, payload)
    else:
        out.write(document_text(payload) + "\n")
    return 0


def dashboard(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Replace this process with `python -m tui --socket PATH`, so Textual's cost is paid there."""
    if importlib.util.find_spec(f"{DASHBOARD_MODULE}.__main__") is None:
        err.write(error_line("this installation has no dashboard yet (the tui package is a stub)"))
        return 1
    out.flush()
    err.flush()
    client.close()
    argv = [sys.executable, "-m", DASHBOARD_MODULE, "--socket", client.socket_path]
    os.execv(sys.executable, argv)
