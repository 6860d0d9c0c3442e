"""`python -m tui [--socket PATH]`: open the dashboard on the daemon's socket."""

from __future__ import annotations

import argparse
import os
import sys

from skyctl.socket_path import resolve_socket_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui", description="skyd's live dashboard")
    parser.add_argument(
        "--socket",
        help="the daemon's socket (default: $SKYD_SOCKET, else $XDG_RUNTIME_DIR/skyd/skyd.sock, "
        "else /run/skyd/skyd.sock)",
    )
    args = parser.parse_args(argv)
    from tui.app import run_dashboard

    return run_dashboard(resolve_socket_path(args.socket, os.environ))


if __name__ == "__main__":
    sys.exit(main())
