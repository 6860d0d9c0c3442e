"""`skyd run`, `skyd demo`, `skyd catalog fetch`: argument parsing only."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import skyd


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skyd", description="The skyd intercloud broker daemon.")
    parser.add_argument("--version", action="version", version=f"skyd {skyd.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--state-dir", type=Path, help="where the store, logs and job dirs live")
    run.add_argument("--socket", type=Path, help="the Unix socket to serve the API on")
    run.add_argument("--config", type=Path, help="a TOML settings file")
    run.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        help="stderr log format (auto: text on a terminal, JSON under systemd or into a pipe)",
    )

    demo = sub.add_parser(
        "demo",
        help="start a private daemon, run the example jobs to completion, stop it",
    )
    demo.add_argument("--examples", type=Path, default=None, help="directory of example tasks")
    demo.add_argument("--keep", action="store_true", help="keep the temporary state directory")

    catalog = sub.add_parser("catalog", help="offering catalogs")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    fetch = catalog_sub.add_parser(
        "fetch", help="rebuild a catalog from a cloud's public pricing API", add_help=False
    )
    fetch.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["catalog", "fetch"]:
        # the fetcher has its own parser (and its own --help)
        from skyd.catalog.fetch import main as fetch_main

        return fetch_main(argv[2:])
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "demo":
        from skyd.demo import run_demo

        return run_demo(examples=args.examples, keep=args.keep)
    if args.command == "catalog" and args.catalog_command == "fetch":
        from skyd.catalog.fetch import main as fetch_main

        return fetch_main(args.rest)
    return 2


def _run(args: argparse.Namespace) -> int:
    from skyd.config import load_settings
    from skyd.daemon import Daemon
    from skyd.errors import SkydError
    from skyd.logfmt import FORMATS, setup_logging

    try:
        settings = load_settings(args.config, state_dir=args.state_dir, socket_path=args.socket)
    except SkydError as exc:
        print(f"skyd: error: {exc.message}", file=sys.stderr)
        return 2
    if args.log_format:
        settings.log_format = args.log_format
    if settings.log_format not in FORMATS:
        print(
            f"skyd: error: log_format: {settings.log_format!r} is not one of "
            f"{', '.join(FORMATS)}; set it to auto (text on a terminal, JSON otherwise)",
            file=sys.stderr,
        )
        return 2
    setup_logging(settings.log_format, settings.log_level)
    try:
        return asyncio.run(Daemon(settings, force_exit=True).run())
    except SkydError as exc:
        print(f"skyd: error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
