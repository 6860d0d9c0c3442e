"""skyctl's entry point: parse the command line and hand it to the command's module.

Command modules are imported only once a command is chosen, so that `submit` never pays for
what `prices` or `dashboard` need (and `--help` pays for none of them).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from skyctl.client import DaemonClient

    Handler = Callable[[argparse.Namespace, DaemonClient, TextIO, TextIO], int]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_DAEMON = 3
EXIT_INTERRUPTED = 130
MAX_LIMIT = 100_000


def job_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"job ids are positive numbers like 12, not {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_LIMIT}, not {text!r}")
    return value


def _submit(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import job_commands

    return job_commands.submit(args, client, out, err)


def _queue(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import job_commands

    return job_commands.queue(args, client, out, err)


def _show(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import job_commands

    return job_commands.show(args, client, out, err)


def _logs(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import job_commands

    return job_commands.logs(args, client, out, err)


def _cancel(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import job_commands

    return job_commands.cancel(args, client, out, err)


def _version(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import job_commands

    return job_commands.version(args, client, out, err)


def _prices(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import market_commands

    return market_commands.prices(args, client, out, err)


def _optimize(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import market_commands

    return market_commands.optimize(args, client, out, err)


def _credits(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import accounting_commands

    return accounting_commands.credits(args, client, out, err)


def _costs(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import accounting_commands

    return accounting_commands.costs(args, client, out, err)


def _clusters(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import cluster_commands

    return cluster_commands.clusters(args, client, out, err)


def _dashboard(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import cluster_commands

    return cluster_commands.dashboard(args, client, out, err)


def build_parser() -> argparse.ArgumentParser:
    socket_help = (
        "the daemon's Unix socket (default: $SKYD_SOCKET, else $XDG_RUNTIME_DIR/skyd/skyd.sock "
        "if it exists, else /run/skyd/skyd.sock)"
    )
    parser = argparse.ArgumentParser(
        prog="skyctl",
        description="Submit, watch and cancel jobs on a skyd daemon.",
        epilog="Exit status: 0 ok, 1 the daemon refused, 2 bad usage, 3 daemon unreachable, "
        "130 interrupted.",
    )
    parser.add_argument("--socket", metavar="PATH", help=socket_help)
    # Accepting --socket after the command too; SUPPRESS keeps it from hiding the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--socket", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str,
        handler: Handler,
        summary: str,
        usage: str | None = None,
        epilog: str | None = None,
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, parents=[common], help=summary, description=summary, usage=usage, epilog=epilog
        )
        sub.set_defaults(handler=handler)
        return sub

    def json_flag(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")

    submit = command(
        "submit",
        _submit,
        "submit task files (a job each), or -- COMMAND as a one-line job",
        usage="skyctl submit [--json] [--name N] FILE...\n"
        "       skyctl submit [--json] [--name N] -- COMMAND...",
        epilog="Prints each new job's id. FILE may be - to read the task from standard input.",
    )
    submit.add_argument("files", nargs="*", metavar="FILE", help="SkyPilot-style task YAML")
    submit.add_argument("--name", metavar="N", help="the job's name (overrides the task's)")
    json_flag(submit)

    queue = command("queue", _queue, "list jobs, newest first (active ones unless --all)")
    queue.add_argument("--all", action="store_true", help="include finished jobs")
    queue.add_argument("--user", metavar="U", help="only this user's jobs (name or uid)")
    queue.add_argument(
        "--state",
        metavar="S",
        action="append",
        help="only jobs in this state (repeatable or comma-separated, e.g. RUNNING,PENDING)",
    )
    queue.add_argument(
        "--limit", metavar="N", type=positive_int, default=100, help="at most N jobs (100)"
    )
    json_flag(queue)

    show = command("show", _show, "one job: its placement and why, and its event timeline")
    show.add_argument("job", metavar="JOB", type=job_id, help="job id")
    json_flag(show)

    logs = command("logs", _logs, "print a job's output")
    logs.add_argument("job", metavar="JOB", type=job_id, help="job id")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing until the job ends (Ctrl-C stops)",
    )

    cancel = command("cancel", _cancel, "cancel jobs (your own, unless you are root)")
    cancel.add_argument("jobs", nargs="+", metavar="JOB", type=job_id, help="job id")
    json_flag(cancel)

    command("version", _version, "print skyctl's version and the daemon's")

    prices = command("prices", _prices, "current prices of offerings, or one offering's history")
    prices.add_argument("--gpu", metavar="NAME", help="accelerator, e.g. A100 or A100:8")
    prices.add_argument("--cloud", metavar="CLOUD", help="only this cloud")
    prices.add_argument("--region", metavar="REGION", help="only this region")
    market = prices.add_mutually_exclusive_group()
    market.add_argument(
        "--spot", dest="spot", action="store_const", const=True, help="spot prices only"
    )
    market.add_argument(
        "--on-demand", dest="spot", action="store_const", const=False, help="on-demand only"
    )
    prices.add_argument(
        "--all-regions", action="store_true", help="every region, not only the cheapest"
    )
    prices.add_argument(
        "--history",
        metavar="OFFERING",
        help="price history of one offering (cloud/region/zone/type)",
    )
    json_flag(prices)

    optimize = command(
        "optimize", _optimize, "where a task would run and what it would cost (dry run)"
    )
    optimize.add_argument("file", metavar="FILE", help="task YAML (- for standard input)")
    json_flag(optimize)

    credits = command("credits", _credits, "credit pools: granted, spent, left, expiry")
    json_flag(credits)

    costs = command("costs", _costs, "what has been spent, grouped")
    costs.add_argument("--by", metavar="KEY", help="group by project, user, cloud or job")
    costs.add_argument("--since", metavar="WHEN", help="a date (2026-11-01) or a duration (7d)")
    json_flag(costs)

    clusters = command("clusters", _clusters, "instances skyd runs now, per job")
    json_flag(clusters)

    command("dashboard", _dashboard, "open the live terminal dashboard")
    return parser


def split_command_argv(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """For `submit … -- COMMAND…`, cut the command off before argparse sees (and eats) it."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--socket":
            index += 2
            continue
        if token.startswith("-"):
            index += 1
            continue
        if token != "submit" or "--" not in argv[index:]:
            break
        cut = argv.index("--", index)
        return list(argv[:cut]), list(argv[cut + 1 :])
    return list(argv), None


def main(argv: Sequence[str] | None = None) -> int:
    head, command_argv = split_command_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(head)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write("skyctl: error: give a command, e.g. `skyctl queue` (see skyctl -h)\n")
        return EXIT_USAGE
    if args.command == "submit":
        problem = _submit_problem(args.files, command_argv)
        if problem:
            sys.stderr.write(f"skyctl submit: error: {problem}\n")
            return EXIT_USAGE
        args.command_argv = command_argv
    return run(args)


def _submit_problem(files: list[str], command_argv: list[str] | None) -> str | None:
    if command_argv is None:
        return None if files else "give task files, or -- and a command to run"
    if files:
        return "give either task files or -- COMMAND, not both"
    if not command_argv:
        return "nothing after --: give the command to run, e.g. -- python train.py"
    return None


def run(args: argparse.Namespace) -> int:
    """Run a parsed command, mapping every expected failure to its message and exit status."""
    from skyctl.client import ApiError, DaemonClient, DaemonUnavailableError
    from skyctl.messages import UsageError, api_error_text, error_line, unavailable_text
    from skyctl.socket_path import resolve_socket_path

    client = DaemonClient(resolve_socket_path(args.socket, os.environ))
    try:
        handler: Handler = args.handler
        return handler(args, client, sys.stdout, sys.stderr)
    except UsageError as exc:
        sys.stderr.write(f"skyctl {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except ApiError as exc:
        sys.stderr.write(error_line(api_error_text(exc)))
        return EXIT_FAILED
    except DaemonUnavailableError as exc:
        sys.stderr.write(error_line(unavailable_text(exc)))
        return EXIT_NO_DAEMON
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILED
    finally:
        client.close()


def _silence_stdout() -> None:
    # The reader went away (`skyctl logs 7 | head`): point stdout at /dev/null so the final
    # flush at interpreter exit does not print a second BrokenPipeError.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
