"""`skyctl jobs launch|queue|cancel|logs`: SkyPilot's managed-job verbs onto skyctl's own."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from skyctl.client import DaemonClient

Declarer = Callable[[argparse.ArgumentParser], None]


def run_verb(args: argparse.Namespace, client: DaemonClient, out: TextIO, err: TextIO) -> int:
    """Each verb is the command it stands for (`jobs launch` follows unless -d: see submit)."""
    from skyctl import job_commands

    verbs = {"launch": job_commands.submit, "queue": job_commands.queue}
    verbs.update(cancel=job_commands.cancel, logs=job_commands.logs)
    return verbs[args.jobs_verb](args, client, out, err)


def declare_jobs_verbs(sub: argparse.ArgumentParser, declarers: Mapping[str, Declarer]) -> None:
    """Each verb takes exactly the arguments of the command it stands for (`declarers`);
    `launch` follows the job to its end unless -d, as `sky jobs launch` does."""
    verbs = sub.add_subparsers(dest="jobs_verb", metavar="VERB", required=True)
    launch = verbs.add_parser(
        "launch",
        help="submit a task (as `submit`) and follow it until it ends, unless -d",
        usage="skyctl jobs launch [-d] [--name N] FILE...\n"
        "       skyctl jobs launch [-d] [--name N] -- COMMAND...",
    )
    declarers["launch"](launch)
    launch.add_argument(
        "-d", "--detach-run", action="store_true", help="print the job id and return (no follow)"
    )
    declarers["queue"](verbs.add_parser("queue", help="list jobs (as `queue`)"))
    declarers["cancel"](verbs.add_parser("cancel", help="cancel jobs (as `cancel`)"))
    declarers["logs"](verbs.add_parser("logs", help="print a job's output (as `logs`)"))
