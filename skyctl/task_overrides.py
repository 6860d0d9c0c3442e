"""SkyPilot's task overrides on `submit`, `launch` and `optimize` (`--env`, `--secret`, `--gpus`,
`--cloud`, …): declared once, turned into the API's `overrides` object."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from skyctl.messages import UsageError

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from skyctl.client import JsonObject


def add_override_arguments(sub: argparse.ArgumentParser, *, with_name: bool = True) -> None:
    group = sub.add_argument_group("task overrides (as in `sky launch`)")
    group.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="set an env (KEY alone takes your environment's value); repeatable",
    )
    group.add_argument(
        "--env-file",
        metavar="FILE",
        help="envs from a dotenv file (KEY=VALUE lines); --env wins over it",
    )
    group.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="set a secret (never shown; KEY alone takes your environment's value)",
    )
    group.add_argument("--gpus", metavar="GPU[:N]", help="accelerators, e.g. A100:8")
    group.add_argument("--cpus", metavar="N[+]", help="vCPUs per node, e.g. 8 or 8+")
    group.add_argument("--memory", metavar="GB[+]", help="memory per node in GiB, e.g. 32+")
    group.add_argument("--infra", metavar="CLOUD[/REGION[/ZONE]]", help="where, e.g. aws/us-east-1")
    group.add_argument("--cloud", metavar="CLOUD", help="the cloud, e.g. gcp")
    group.add_argument("--region", metavar="REGION", help="the region")
    group.add_argument("--zone", metavar="ZONE", help="the zone")
    group.add_argument("--num-nodes", type=_nodes, metavar="N", help="nodes to run on at once")
    spot = group.add_mutually_exclusive_group()
    spot.add_argument("--use-spot", dest="use_spot", action="store_const", const=True)
    spot.add_argument("--no-use-spot", dest="use_spot", action="store_const", const=False)
    group.add_argument("--workdir", metavar="DIR", help="the directory copied for the job")
    if with_name:
        group.add_argument("--name", metavar="N", help="the task's name")
    group.add_argument(
        "--dryrun",
        action="store_true",
        help="show where it would run and what it would cost; nothing is submitted",
    )


def _nodes(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of nodes, not {text!r}"
        ) from None


def _pairs(values: list[str], option: str, environ: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not key:
            raise UsageError(f"{option} {item!r}: write {option} KEY=VALUE or {option} KEY")
        if not sep:
            if key not in environ:
                raise UsageError(
                    f"{option} {key}: {key} is not set in your environment; "
                    f"write {option} {key}=VALUE"
                )
            value = environ[key]
        result[key] = value
    return result


def _env_file(path: str) -> dict[str, str]:
    from dotenv import dotenv_values  # only paid for when --env-file is used

    if not os.path.isfile(path):
        raise UsageError(f"--env-file {path!r} does not exist")
    values = dotenv_values(path)
    missing = [key for key, value in values.items() if value is None]
    if missing:
        raise UsageError(f"--env-file {path!r}: {', '.join(missing)} has no value; write KEY=VALUE")
    return {key: value for key, value in values.items() if value is not None}


def overrides_from(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> JsonObject | None:
    """The API's `overrides` object for the options given (None when there are none)."""
    environ = os.environ if environ is None else environ
    envs: dict[str, str] = {}
    if getattr(args, "env_file", None):
        envs.update(_env_file(args.env_file))
    envs.update(_pairs(getattr(args, "env", None) or [], "--env", environ))
    overrides: JsonObject = {
        "envs": envs,
        "secrets": _pairs(getattr(args, "secret", None) or [], "--secret", environ),
    }
    for key in ("gpus", "cpus", "memory", "infra", "cloud", "region", "zone", "num_nodes"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "use_spot", None) is not None:
        overrides["use_spot"] = args.use_spot
    if getattr(args, "workdir", None) is not None:
        overrides["workdir"] = args.workdir
    present = {key: value for key, value in overrides.items() if value not in ({}, None)}
    return present or None
