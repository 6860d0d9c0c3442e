"""The cluster commands: launch -c, exec, clusters, stop, start, down, autostop; and dashboard.

Each command has an `*_arguments(sub)` declaring its options and a handler
`(args, client, out, err) -> exit status`, to be listed in skyctl's command table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from urllib.parse import quote

from skyctl.client import DaemonClient
from skyctl.messages import UsageError, error_line
from skyctl.optional_endpoint import call_optional
from skyctl.render import (
    EMPTY,
    format_money,
    format_relative,
    format_table,
    json_flag,
    parse_time,
    write_json,
)

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

DASHBOARD_MODULE = "tui"
TASK_SUFFIXES = (".yaml", ".yml")


# -- arguments -------------------------------------------------------------------------------


def launch_arguments(sub: argparse.ArgumentParser) -> None:
    """`launch -c NAME FILE`: a cluster that stays up, running FILE's setup and run first."""
    sub.add_argument("-c", "--cluster", required=True, metavar="NAME", help="the cluster's name")
    sub.add_argument("file", nargs="?", metavar="FILE", help="task YAML (- for standard input)")
    sub.add_argument("--name", metavar="N", help="the first job's name (default: the task's)")
    sub.add_argument(
        "-i",
        "--idle-minutes",
        type=_minutes,
        metavar="MINUTES",
        help="autostop after this many idle minutes (overrides the task's resources.autostop)",
    )
    sub.add_argument("--down", action="store_true", help="with -i: tear down instead of stopping")
    _detach_flag(sub)
    json_flag(sub)
    from skyctl.task_overrides import add_override_arguments

    add_override_arguments(sub, with_name=False)


def _detach_flag(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "-d",
        "--detach-run",
        action="store_true",
        help="return once the job is queued instead of following its progress and output",
    )


def exec_arguments(sub: argparse.ArgumentParser) -> None:
    """`exec NAME FILE` or `exec NAME -- CMD…`: a job on the cluster, nothing launched."""
    sub.add_argument("cluster", metavar="NAME", help="the cluster to run on")
    sub.add_argument(
        "target", nargs="*", metavar="FILE|CMD", help="a task YAML file, or -- and a command"
    )
    sub.add_argument("--name", metavar="N", help="the job's name")
    _detach_flag(sub)
    json_flag(sub)


def clusters_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--all", action="store_true", help="include torn-down clusters")
    json_flag(sub)


def stop_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("cluster", metavar="NAME", help="the cluster")
    sub.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    sub.add_argument(
        "--force", action="store_true", help="cancel the cluster's running and pending jobs first"
    )
    json_flag(sub)


def start_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("cluster", metavar="NAME", help="the cluster")
    json_flag(sub)


def autostop_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("cluster", metavar="NAME", help="the cluster")
    sub.add_argument(
        "-i",
        "--idle-minutes",
        type=_minutes,
        metavar="MINUTES",
        help="stop after this many idle minutes (0: as soon as it is idle)",
    )
    sub.add_argument("--down", action="store_true", help="tear down instead of stopping")
    sub.add_argument("--cancel", action="store_true", help="turn autostop off")
    json_flag(sub)


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"idle minutes are whole numbers like 30, not {text!r}")
    return value


# -- handlers --------------------------------------------------------------------------------


def launch(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    if args.down and args.idle_minutes is None:
        raise UsageError("--down goes with -i MINUTES")
    if args.dryrun:
        from skyctl.market_commands import explain_file

        return explain_file(args, client, out, err)
    body = _task_body(args.file, getattr(args, "command_argv", None), args.name)
    from skyctl.task_overrides import overrides_from

    if (overrides := overrides_from(args)) is not None:
        body["overrides"] = overrides
    body["name"] = args.cluster
    if args.idle_minutes is not None:
        body.update(idle_minutes=args.idle_minutes, down=args.down)
    watcher = None
    if not args.json and not args.detach_run:
        from skyctl.follow import newest_seq, watching

        # watch before asking: the launch request returns only once the cluster is up
        watcher = watching(client, err, newest_seq(client), tty=None, cluster=args.cluster)
    answer = call_optional(client, "launch", "POST", "/v1/clusters", body=body)
    if args.json:
        write_json(out, answer)
        return 0
    cluster, job = answer.get("cluster", {}), answer.get("job", {})
    if watcher is not None and job.get("id") is not None:
        from skyctl.follow import follow

        err.write(f"cluster {cluster.get('name')} is {cluster.get('state')} ({_where(cluster)})\n")
        return follow(client, int(job["id"]), out, err, watcher=watcher)
    out.write(f"cluster {cluster.get('name')} is {cluster.get('state')} ({_where(cluster)})\n")
    out.write(
        f"job {job.get('id')} queued on it; follow it with `skyctl logs -f {job.get('id')}`\n"
    )
    return 0


def exec_(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    command_argv = getattr(args, "command_argv", None)
    file: str | None = None
    if command_argv is None:
        if not args.target:
            raise UsageError("give a task file, or -- and a command, e.g. -- python train.py")
        if len(args.target) == 1 and _is_task_file(args.target[0]):
            file = args.target[0]
        else:
            command_argv = list(args.target)
    elif args.target:
        raise UsageError("give either a task file or -- COMMAND, not both")
    body = _task_body(file, command_argv, args.name)
    job = call_optional(
        client,
        "exec",
        "POST",
        f"/v1/clusters/{_segment(args.cluster)}/exec",
        body=body,
        resource_may_be_missing=True,
    )
    if args.json:
        write_json(out, job)
    elif args.detach_run:
        out.write(f"{job.get('id')}\n")
    else:
        from skyctl.follow import follow

        err.write(f"job {job.get('id')} queued on {args.cluster}\n")
        return follow(client, int(job["id"]), out, err)
    return 0


def clusters(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    query = {"all": True} if getattr(args, "all", False) else None
    payload = call_optional(client, "clusters", "GET", "/v1/clusters", query=query)
    if args.json:
        write_json(out, payload)
        return 0
    rows = payload.get("clusters", []) if isinstance(payload, dict) else []
    if not rows:
        out.write("no clusters; start one with `skyctl launch -c NAME task.yaml`\n")
        return 0
    out.write(clusters_table(rows) + "\n")
    return 0


def clusters_table(rows: list[dict[str, Any]], now: float | None = None) -> str:
    now = time.time() if now is None else now
    headers = ["NAME", "STATE", "OWNER", "WHERE", "RESOURCES", "$/HR", "AUTOSTOP", "JOBS", "SINCE"]
    table = []
    for row in rows:
        resources = row.get("instance_type") or EMPTY
        if row.get("accelerators"):
            resources += f" {row['accelerators']}"
        if len(row.get("instances") or ()) > 1:
            resources = f"{len(row['instances'])}x {resources}"
        table.append(
            [
                str(row.get("name")),
                str(row.get("state")),
                str(row.get("owner")),
                _where(row),
                resources,
                format_money(row.get("hourly_price")),
                _autostop_text(row.get("autostop")),
                str(len(row.get("active_jobs") or ())),
                format_relative(parse_time(row.get("up_at") or row.get("created_at")), now),
            ]
        )
    return format_table(headers, table)


def stop(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    return _change(args, client, out, err, "stop", {"force": args.force})


def down(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    return _change(args, client, out, err, "down", {"force": args.force})


def start(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    return _change(args, client, out, err, "start", None)


def autostop(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    if args.cancel == (args.idle_minutes is not None):
        raise UsageError("give either -i MINUTES or --cancel")
    if args.cancel and args.down:
        raise UsageError("--down goes with -i MINUTES, not with --cancel")
    body: dict[str, Any] = (
        {"cancel": True} if args.cancel else {"idle_minutes": args.idle_minutes, "down": args.down}
    )
    return _change(args, client, out, err, "autostop", body)


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


# -- helpers ---------------------------------------------------------------------------------

_QUESTIONS = {
    "stop": "Stop cluster {name}? Its instances are stopped; disks are kept.",
    "down": "Tear down cluster {name}? Its instances and their disks are deleted.",
}


def confirm(question: str, stdin: TextIO, err: TextIO) -> bool:
    """Ask on a terminal; without one (scripts, pipes) there is nobody to ask: go ahead."""
    if not stdin.isatty():
        return True
    err.write(f"{question} [y/N] ")
    err.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _change(
    args: argparse.Namespace,
    client: DaemonClient,
    out: TextIO,
    err: TextIO,
    verb: str,
    body: dict[str, Any] | None,
) -> int:
    question = _QUESTIONS.get(verb)
    if (
        question
        and not args.yes
        and not confirm(question.format(name=args.cluster), sys.stdin, err)
    ):
        err.write(f"{verb} of {args.cluster} not confirmed; nothing changed\n")
        return 1
    cluster = call_optional(
        client,
        verb,
        "POST",
        f"/v1/clusters/{_segment(args.cluster)}/{verb}",
        body=body,
        resource_may_be_missing=True,
    )
    if args.json:
        write_json(out, cluster)
        return 0
    line = f"cluster {cluster.get('name')} is {cluster.get('state')}"
    if verb == "autostop":
        line += f"; autostop: {_autostop_text(cluster.get('autostop'))}"
    out.write(line + "\n")
    return 0


def _task_body(
    file: str | None, command_argv: list[str] | None, name: str | None
) -> dict[str, Any]:
    if file is not None and command_argv is not None:
        raise UsageError("give either a task file or -- COMMAND, not both")
    if command_argv is not None:
        if not command_argv:
            raise UsageError("nothing after --: give the command to run, e.g. -- python train.py")
        return {"command": list(command_argv), "base_dir": os.getcwd(), "job_name": name}
    if file is None:
        raise UsageError("give a task file (FILE, or - for standard input)")
    from skyctl.job_commands import read_task_file

    text, base_dir = read_task_file(file)
    source = "<stdin>" if file == "-" else file
    return {"task_yaml": text, "base_dir": base_dir, "source": source, "job_name": name}


def _is_task_file(word: str) -> bool:
    """`exec NAME x.yaml` runs a task file; anything else is a command (as SkyPilot reads it)."""
    return word == "-" or (word.endswith(TASK_SUFFIXES) and os.path.isfile(word))


def _where(row: dict[str, Any]) -> str:
    parts = [row.get("cloud"), row.get("region"), row.get("zone")]
    text = "/".join(str(p) for p in parts if p)
    return text or EMPTY


def _autostop_text(setting: Any) -> str:
    if not isinstance(setting, dict):
        return "off"
    text = f"{setting.get('idle_minutes')}m"
    return f"{text} (down)" if setting.get("down") else text


def _segment(text: str) -> str:
    return quote(text, safe="")
