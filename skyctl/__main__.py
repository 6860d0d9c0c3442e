"""skyctl's entry point: parse the command line and hand it to the command's module.

Each command's module declares its arguments and runs it, and is imported only once that
command is chosen, so that `submit` never pays for what `prices` or `dashboard` need.
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


def _handler_from(module: str, name: str) -> Handler:
    """A handler that imports its command module only when its command runs."""

    def handler(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
        import importlib

        function: Handler = getattr(importlib.import_module(f"skyctl.{module}"), name)
        return function(args, client, out, err)

    return handler


_submit = _handler_from("job_commands", "submit")
_queue = _handler_from("job_commands", "queue")
_show = _handler_from("job_commands", "show")
_logs = _handler_from("job_commands", "logs")
_cancel = _handler_from("job_commands", "cancel")
_version = _handler_from("job_commands", "version")
_prices = _handler_from("market_commands", "prices")
_optimize = _handler_from("market_commands", "optimize")
_credits = _handler_from("accounting_commands", "credits")
_costs = _handler_from("accounting_commands", "costs")
_COSTS_EPILOG = (
    "An amount is instance time at the price in force plus data sent out of clouds "
    "(checkpoints pulled home from cloud VMs, at catalogs/egress.csv's internet rate per GB); "
    "DATA OUT is that part and its bytes (--json: data_transfer, data_transfer_bytes)."
)
_orphans = _handler_from("admin_commands", "orphans")
_check = _handler_from("check_command", "check")


def _cluster_command(name: str) -> Handler:
    return _handler_from("cluster_commands", name)


def _arguments_from(module: str, name: str) -> Callable[[argparse.ArgumentParser], None]:
    def declare(sub: argparse.ArgumentParser) -> None:
        import importlib

        getattr(importlib.import_module(f"skyctl.{module}"), name)(sub)

    return declare


def _cluster_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    return _arguments_from("cluster_commands", name)


def _job_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    return _arguments_from("job_commands", name)


def _sky_command(name: str) -> Handler:
    return _handler_from("sky_commands", name)


def _completion(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl.completion import completion_script

    out.write(completion_script(args.shell, build_parser()))
    return 0


def _completion_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")


def _jobs_arguments(sub: argparse.ArgumentParser) -> None:
    from skyctl import job_commands
    from skyctl.job_aliases import declare_jobs_verbs

    declarers = {"launch": job_commands.submit_arguments, "queue": job_commands.queue_arguments}
    declarers.update(cancel=job_commands.cancel_arguments, logs=job_commands.logs_arguments)
    declare_jobs_verbs(sub, declarers)


def _dashboard(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    from skyctl import cluster_commands

    return cluster_commands.dashboard(args, client, out, err)


def _no_arguments(sub: argparse.ArgumentParser) -> None:
    pass


class _VersionAction(argparse.Action):
    """`--version`, with the installed version looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from skyctl.job_commands import installed_version

        sys.stdout.write(f"skyctl {installed_version()}\n")
        parser.exit()


class Command:
    """One subcommand: its name, one-line help, how its arguments are declared, its handler."""

    __slots__ = ("arguments", "epilog", "handler", "name", "summary", "usage")

    def __init__(
        self,
        name: str,
        summary: str,
        handler: Handler,
        arguments: Callable[[argparse.ArgumentParser], None],
        *,
        usage: str | None = None,
        epilog: str | None = None,
    ) -> None:
        self.name = name
        self.summary = summary
        self.handler = handler
        self.arguments = arguments
        self.usage = usage
        self.epilog = epilog


COMMANDS = (
    Command(
        "submit",
        "submit task files (a job each), or -- COMMAND as a one-line job",
        _submit,
        _job_arguments("submit_arguments"),
        usage="skyctl submit [--json] [--name N] FILE...\n"
        "       skyctl submit [--json] [--name N] -- COMMAND...",
        epilog="Prints each new job's id. FILE may be - to read the task from standard input.",
    ),
    Command(
        "queue",
        "list jobs, newest first (active ones unless --all)",
        _queue,
        _job_arguments("queue_arguments"),
    ),
    Command(
        "show",
        "one job: its placement and why, and its event timeline",
        _show,
        _job_arguments("show_arguments"),
    ),
    Command("logs", "print a job's output", _logs, _job_arguments("logs_arguments")),
    Command(
        "cancel",
        "cancel jobs (your own, unless you are root); returns once the daemon has taken the"
        " cancel (it stops each job in the background); --wait waits until each has stopped"
        " and its bucket mounts are written back",
        _cancel,
        _job_arguments("cancel_arguments"),
    ),
    Command("version", "print skyctl's version and the daemon's", _version, _no_arguments),
    Command(
        "prices",
        "current prices of offerings, or one offering's history",
        _prices,
        _arguments_from("market_commands", "prices_arguments"),
    ),
    Command(
        "optimize",
        "where a task would run and what it would cost (dry run)",
        _optimize,
        _arguments_from("market_commands", "optimize_arguments"),
    ),
    Command(
        "credits",
        "credit pools: granted, spent, left, expiry (admins: add|set|topup|retire)",
        _credits,
        _arguments_from("accounting_commands", "credits_arguments"),
    ),
    Command(
        "costs",
        "what has been spent, grouped (instance time and data out of clouds: egress)",
        _costs,
        _arguments_from("accounting_commands", "costs_arguments"),
        epilog=_COSTS_EPILOG,
    ),
    Command(
        "projects",
        "projects: budgets, spending, members (admins: add|set|members)",
        _handler_from("budget_commands", "projects"),
        _arguments_from("budget_commands", "projects_arguments"),
    ),
    Command(
        "budget",
        "every monthly budget and what is spent of it (admins: set --lab)",
        _handler_from("budget_commands", "budget"),
        _arguments_from("budget_commands", "budget_arguments"),
    ),
    Command(
        "limits",
        "per-user limits: GPUs and $/h at once, monthly budget (admins: set)",
        _handler_from("budget_commands", "limits"),
        _arguments_from("budget_commands", "limits_arguments"),
    ),
    Command(
        "budget-override",
        "let one job start and run past budgets and limits (admins)",
        _handler_from("budget_commands", "override"),
        _arguments_from("budget_commands", "override_arguments"),
    ),
    Command(
        "launch",
        "launch a cluster that stays up, run FILE on it and follow it (-d: do not follow)",
        _cluster_command("launch"),
        _cluster_arguments("launch_arguments"),
    ),
    Command(
        "exec",
        "run a task file or -- COMMAND on a cluster and follow it (-d: print its id)",
        _cluster_command("exec_"),
        _cluster_arguments("exec_arguments"),
    ),
    Command(
        "clusters",
        "interactive clusters: where, state, idle time, autostop",
        _cluster_command("clusters"),
        _cluster_arguments("clusters_arguments"),
    ),
    Command(
        "stop",
        "stop a cluster's instances (disks kept)",
        _cluster_command("stop"),
        _cluster_arguments("stop_arguments"),
    ),
    Command(
        "start",
        "start a stopped cluster again",
        _cluster_command("start"),
        _cluster_arguments("start_arguments"),
    ),
    Command(
        "down",
        "tear a cluster down (instances and disks deleted)",
        _cluster_command("down"),
        _cluster_arguments("stop_arguments"),
    ),
    Command(
        "autostop",
        "stop (or --down) a cluster after MINUTES idle; --cancel to turn off",
        _cluster_command("autostop"),
        _cluster_arguments("autostop_arguments"),
    ),
    Command(
        "orphans",
        "instances found running under this daemon's tags with no record",
        _orphans,
        _arguments_from("render", "json_flag"),
    ),
    Command(
        "check",
        "each cloud: one cheap authenticated call; enabled, or why not and the fix",
        _check,
        _arguments_from("render", "json_flag"),
    ),
    Command("dashboard", "open the live terminal dashboard", _dashboard, _no_arguments),
    Command(
        "status",
        "clusters and managed jobs at a glance (as `sky status`)",
        _sky_command("status"),
        _arguments_from("sky_commands", "status_arguments"),
    ),
    Command(
        "show-gpus",
        "accelerators, counts, cheapest on-demand and spot price per cloud/region",
        _sky_command("show_gpus"),
        _arguments_from("sky_commands", "show_gpus_arguments"),
    ),
    Command(
        "cost-report",
        "what each job cost (as `costs --by job`)",
        _costs,
        _arguments_from("accounting_commands", "cost_report_arguments"),
        epilog=_COSTS_EPILOG,
    ),
    Command(
        "jobs",
        "SkyPilot's managed-job verbs: launch, queue, cancel, logs",
        _handler_from("job_aliases", "run_verb"),
        _jobs_arguments,
    ),
    Command(
        "storage",
        "buckets skyd created for tasks: ls, delete NAME… (persistent ones need --force)",
        _handler_from("storage_commands", "storage"),
        _arguments_from("storage_commands", "storage_arguments"),
    ),
    Command(
        "completion",
        "print a shell completion script: bash, zsh or fish",
        _completion,
        _completion_arguments,
        epilog="e.g. `skyctl completion bash > ~/.local/share/bash-completion/completions/skyctl`",
    ),
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only`, just that command (a few ms less at startup)."""
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
    parser.add_argument("--version", action=_VersionAction, help="print skyctl's version")
    # Accepting --socket after the command too; SUPPRESS keeps it from hiding the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--socket", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        if only is not None and command.name != only:
            continue
        sub = subparsers.add_parser(
            command.name,
            parents=[common],
            help=command.summary,
            description=command.summary,
            usage=command.usage,
            epilog=command.epilog,
        )
        sub.set_defaults(handler=command.handler)
        command.arguments(sub)
    return parser


def command_index(argv: Sequence[str]) -> int | None:
    """Where the command name is in `argv` (skipping global options), if anywhere."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--socket":
            index += 2
        elif token.startswith("-"):
            index += 1
        else:
            return index
    return None


def split_command_argv(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """For `submit|exec … -- COMMAND…`, cut the command off before argparse sees (and eats) it."""
    index = command_index(argv)
    if index is None or "--" not in argv[index:]:
        return list(argv), None
    launch = argv[index] == "jobs" and "launch" in argv[index : argv.index("--", index)]
    if argv[index] not in ("submit", "exec") and not launch:
        return list(argv), None
    cut = argv.index("--", index)
    return list(argv[:cut]), list(argv[cut + 1 :])


def main(argv: Sequence[str] | None = None) -> int:
    head, command_argv = split_command_argv(sys.argv[1:] if argv is None else argv)
    index = command_index(head)
    chosen = head[index] if index is not None else None
    # Unknown or missing commands get the full parser, so that help and errors list them all.
    known = any(command.name == chosen for command in COMMANDS)
    if chosen is None and "--version" in head:
        known, chosen = True, ""  # `skyctl --version` needs no subcommand declared
    parser = build_parser(chosen if known else None)
    try:
        args = parser.parse_args(head)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write("skyctl: error: give a command, e.g. `skyctl queue` (see skyctl -h)\n")
        return EXIT_USAGE
    if args.command == "submit" or getattr(args, "jobs_verb", None) == "launch":
        problem = _submit_problem(args.files, command_argv)
        if problem:
            sys.stderr.write(f"skyctl {args.command}: error: {problem}\n")
            return EXIT_USAGE
        args.command_argv = command_argv
    elif args.command == "exec":
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
