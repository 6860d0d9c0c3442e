"""The job commands: submit, queue, show, logs, cancel, and version, with their arguments."""

from __future__ import annotations

import argparse
import os
import sys
import time

from skyctl.client import ApiError, DaemonClient, DaemonUnavailableError
from skyctl.job_view import state_text
from skyctl.messages import UsageError, api_error_text, error_line
from skyctl.render import json_flag, write_json

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from skyctl.client import JsonObject

MAX_PAGE = 1000
MAX_LIMIT = 100_000


# -- arguments -------------------------------------------------------------------------------


def job_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"job ids are positive numbers like 12, not {text!r}")
    return value


def node_rank(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise argparse.ArgumentTypeError(
            f"node ranks are 0, 1, 2, ... (0 is the head node), not {text!r}"
        )
    return int(text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_LIMIT}, not {text!r}")
    return value


def submit_arguments(sub: argparse.ArgumentParser) -> None:
    from skyctl.task_overrides import add_override_arguments

    sub.add_argument("files", nargs="*", metavar="FILE", help="SkyPilot-style task YAML")
    sub.add_argument("--name", metavar="N", help="the job's name (overrides the task's)")
    sub.add_argument(
        "-f", "--follow", action="store_true", help="show its progress and logs until it ends"
    )
    json_flag(sub)
    add_override_arguments(sub, with_name=False)


def queue_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--all", action="store_true", help="include finished jobs")
    sub.add_argument("--user", metavar="U", help="only this user's jobs (name or uid)")
    sub.add_argument(
        "--state",
        metavar="S",
        action="append",
        help="only jobs in this state (repeatable or comma-separated, e.g. RUNNING,PENDING)",
    )
    sub.add_argument(
        "--limit", metavar="N", type=positive_int, default=100, help="at most N jobs (100)"
    )
    json_flag(sub)


def show_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("job", metavar="JOB", type=job_id, help="job id")
    json_flag(sub)


def logs_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("job", metavar="JOB", type=job_id, help="job id")
    sub.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing until the job ends (Ctrl-C stops)",
    )
    sub.add_argument(
        "--node",
        metavar="K",
        type=node_rank,
        default=0,
        help="the log of node K of a multi-node job (its SKYPILOT_NODE_RANK; default 0, the head)",
    )
    sub.add_argument(
        "--all-nodes",
        action="store_true",
        help="every node's log of a multi-node job, node K's lines prefixed \"(node K) \"",
    )


def cancel_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("jobs", nargs="+", metavar="JOB", type=job_id, help="job id")
    sub.add_argument(
        "--wait",
        action="store_true",
        help="wait until each job has stopped and its bucket mounts are written back (no time"
        " limit: up to [local] cancel_grace_seconds + cancel_write_back_seconds); without it"
        " skyctl returns once the daemon has taken the cancel",
    )
    json_flag(sub)


# -- commands --------------------------------------------------------------------------------


def read_task_file(path: str) -> tuple[str, str]:
    """The task file's text and the directory its relative paths are resolved from: the
    current directory, as in SkyPilot (`workdir: examples/y` in examples/x.yaml, run from
    the repository root, is the root's examples/y). `-` reads the task from standard input.
    """
    if path == "-":
        return sys.stdin.read(), os.getcwd()
    try:
        with open(path, encoding="utf-8") as task_file:
            text = task_file.read()
    except FileNotFoundError:
        raise UsageError(f"task file {path!r} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"task file {path!r} is a directory; give a YAML file") from None
    except UnicodeDecodeError:
        raise UsageError(f"task file {path!r} is not UTF-8 text; give a YAML file") from None
    except OSError as exc:
        raise UsageError(f"cannot read task file {path!r}: {exc.strerror}") from None
    return text, os.getcwd()


def submit(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Submit task files (one job each) or one command; print each new job's id."""
    follow = wants_follow(args)
    if args.command_argv is not None:
        job = client.submit_command(args.command_argv, os.getcwd(), args.name)
        if follow:
            return _follow(client, job, out, err)
        _report_submitted(job, args.json, out)
        return 0
    if getattr(args, "dryrun", False):
        from skyctl.market_commands import explain_file

        status = 0
        for path in args.files:
            args.file = path
            status = max(status, explain_file(args, client, out, err))
        return status
    from skyctl.task_overrides import overrides_from

    overrides = overrides_from(args)
    # Read every file first so that a typo in the last name submits nothing.
    tasks = [(path, *read_task_file(path)) for path in args.files]
    jobs: list[JsonObject] = []
    failed = 0
    for path, text, base_dir in tasks:
        try:
            job = client.submit_task(
                text, base_dir, args.name, source=_source_name(path), overrides=overrides
            )
        except ApiError as exc:
            failed += 1
            message = api_error_text(exc)
            # Spec errors already start with the file (and line); others need it added.
            if not message.startswith(_source_name(path)):
                message = f"{path}: {message}"
            err.write(error_line(message))
            continue
        jobs.append(job)
        if follow and len(tasks) == 1:
            return _follow(client, job, out, err)
        if not args.json:
            _report_submitted(job, False, out)
    if args.json and (jobs or len(tasks) > 1):
        write_json(out, jobs[0] if len(tasks) == 1 else jobs)
    return 1 if failed else 0


def wants_follow(args: argparse.Namespace) -> bool:
    """`submit -f`, and `jobs launch` unless -d (SkyPilot's default); never with --json."""
    if args.json:
        return False
    if getattr(args, "jobs_verb", None) == "launch":
        return not args.detach_run
    return bool(getattr(args, "follow", False))


def _follow(client: DaemonClient, job: JsonObject, out: TextIO, err: TextIO) -> int:
    from skyctl.follow import follow

    err.write(f"job {job.get('id')} submitted\n")
    return follow(client, int(job["id"]), out, err)


def _source_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _report_submitted(job: JsonObject, as_json: bool, out: TextIO) -> None:
    if as_json:
        write_json(out, job)
    else:
        # a pipeline's stages are jobs of their own: one id per line, in order
        stages = job.get("stages")
        ids = [stage.get("id") for stage in stages] if isinstance(stages, list) else [job.get("id")]
        out.write("".join(f"{job_id}\n" for job_id in ids))
        out.flush()


def parse_states(values: list[str] | None) -> list[str]:
    """`--state running,pending --state FAILED` → ["RUNNING", "PENDING", "FAILED"]."""
    states: list[str] = []
    for value in values or []:
        states.extend(part.strip().upper() for part in value.split(",") if part.strip())
    return states


def queue(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """List jobs, newest first, as a table or JSON."""
    states = parse_states(args.state)
    # Asking for a state by name is asking for it even when it is terminal.
    include_terminal = args.all or bool(states)
    jobs: list[JsonObject] = []
    cursor: str | None = None
    while len(jobs) < args.limit:
        page, cursor = client.list_jobs(
            states=states,
            user=args.user,
            include_terminal=include_terminal,
            limit=min(args.limit - len(jobs), MAX_PAGE),
            cursor=cursor,
        )
        jobs.extend(page)
        if cursor is None or not page:
            break
    if args.json:
        write_json(out, jobs)
    elif jobs:
        from skyctl.job_view import queue_table

        out.write(queue_table(jobs, time.time()) + "\n")
    else:
        out.write("No jobs." if include_terminal else "No active jobs (--all shows finished ones).")
        out.write("\n")
    if cursor is not None and not args.json:
        err.write(f"(showing the newest {len(jobs)} jobs; there may be more: use --limit N)\n")
    return 0


def show(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """One job: its facts, placement and the reason for it, and its event timeline."""
    job = client.get_job(args.job)
    if args.json:
        write_json(out, job)
    else:
        from skyctl.job_view import job_page

        out.write(job_page(job, time.time()) + "\n")
    return 0


def logs(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Copy a job's log to stdout as it arrives; with --follow, until the job ends."""
    from skyctl.follow import copy_log

    if args.node and args.all_nodes:
        err.write("skyctl: error: --node and --all-nodes: give one of them\n")
        return 2
    chunks = client.job_logs(args.job, follow=args.follow, node=args.node, all_nodes=args.all_nodes)
    copy_log(chunks, out)
    return 0


def cancel(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Cancel each job given; report each outcome, and fail if any could not be cancelled.
    The daemon stops the jobs in the background unless --wait asks to see them stopped."""
    jobs: list[JsonObject] = []
    failed = 0
    for job_id in args.jobs:
        try:
            job = client.cancel_job(job_id, wait=args.wait)
        except ApiError as exc:
            failed += 1
            err.write(error_line(f"job {job_id}: {api_error_text(exc)}"))
            continue
        jobs.append(job)
        if not args.json:
            out.write(f"job {job.get('id', job_id)}: {state_text(job)}\n")
    under_way = [str(job.get("id")) for job in jobs if job.get("cancel_requested")]
    if under_way and not args.json:
        out.write(
            f"cancel under way: the daemon is stopping job {', '.join(under_way)}; follow it"
            f" with `skyctl show {under_way[0]}` or `skyctl status` (--wait to wait for it)\n"
        )
    if args.json:
        write_json(out, jobs[0] if len(args.jobs) == 1 and jobs else jobs)
    return 1 if failed else 0


def version(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """skyctl's version, and the daemon's when one answers (its absence is not an error here)."""
    out.write(f"skyctl  {installed_version()}\n")
    try:
        health = client.health()
    except DaemonUnavailableError as exc:
        out.write(f"skyd    not reachable at {exc.socket_path} ({exc.reason})\n")
        return 0
    except ApiError as exc:
        out.write(f"skyd    answered with an error at {client.socket_path}: {exc.message}\n")
        return 0
    providers = ", ".join(str(name) for name in health.get("providers") or []) or "none"
    out.write(
        f"skyd    {health.get('version', '?')} (pid {health.get('pid', '?')}, "
        f"providers: {providers}) at {client.socket_path}\n"
    )
    return 0


def installed_version() -> str:
    # the package's own version attribute (pyproject reads it too): importing the skyd package
    # costs nothing, while importlib.metadata's distribution scan costs ~20 ms at startup
    from skyd import __version__

    return __version__
