"""Task YAML (SkyPilot format plus skyd fields) → TaskSpec, or a SpecError saying what to fix."""

from __future__ import annotations

import datetime as dt
import os.path
import re
import shlex
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skyd.errors import SpecError
from skyd.spec.fields import FieldReader, Problems, as_string_map, as_text, check_value
from skyd.spec.resources import AutostopSpec, ResourcesSpec
from skyd.spec.task import (
    ANY_ACCELERATOR,
    DeadlineSpec,
    JobRecoverySpec,
    Objective,
    RecoveryStrategy,
    TaskSpec,
)
from skyd.spec.values import (
    DEFAULT_AUTOSTOP_MINUTES,
    DURATION_HINT,
    describe,
    is_number,
    parse_accelerators,
    parse_autostop_minutes,
    parse_cloud,
    parse_countries,
    parse_cpus,
    parse_disk_size,
    parse_dollars_per_hour,
    parse_duration,
    parse_duration_text,
    parse_infra,
    parse_instant,
    parse_memory,
    parse_strategy_name,
)
from skyd.spec.yaml_source import load_yaml

TOP_FIELDS = (
    "name",
    "workdir",
    "num_nodes",
    "resources",
    "envs",
    "file_mounts",
    "setup",
    "run",
    "job_recovery",
    "deadline",
    "estimated_runtime",
    "project",
    "priority",
    "objective",
    "migrate",
)
TOP_UNSUPPORTED = {
    "secrets": "not supported yet; pass values through envs, or read them from a file mount",
    "service": "SkyServe services are not supported; skyd runs batch jobs",
    "config": "per-task config overrides are not supported yet",
    "event_callback": "not supported yet",
    "volumes": "not supported yet; use file_mounts with local paths",
    "inputs": "not supported; skyd does not use SkyPilot's data-transfer estimates",
    "outputs": "not supported; skyd does not use SkyPilot's data-transfer estimates",
}
LOCATION_FIELDS = ("infra", "cloud", "region", "zone")
HARDWARE_FIELDS = (
    "accelerators",
    "cpus",
    "memory",
    "instance_type",
    "use_spot",
    "disk_size",
    "max_hourly_cost",
    "countries",
    "autostop",
    "image_id",
    "labels",
)
RESOURCE_FIELDS = (*LOCATION_FIELDS, *HARDWARE_FIELDS, "any_of", "ordered", "job_recovery")
RESOURCE_UNSUPPORTED = {
    "ports": "not supported yet (skyd runs batch jobs and opens no ports); remove it",
    "accelerator_args": "not supported yet (TPU options); remove it",
    "disk_tier": "not supported yet; remove it (skyd uses each cloud's default disk)",
    "network_tier": "not supported yet; remove it",
    "spot_recovery": "was renamed by SkyPilot; use job_recovery",
}
CANDIDATE_UNSUPPORTED = {
    **RESOURCE_UNSUPPORTED,
    "any_of": "cannot be nested inside an alternative; list every alternative in one any_of",
    "ordered": "cannot be nested inside an alternative; list every alternative in one ordered",
    "job_recovery": "is set once per task (top level or in resources), not per alternative",
}
JOB_RECOVERY_FIELDS = ("strategy", "max_restarts_on_errors")
AUTOSTOP_FIELDS = ("idle_minutes", "down")
STRATEGY_NAMES = tuple(strategy.value for strategy in RecoveryStrategy)
NAME_LIMIT = 200
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

# How specific an alternative's location is; an alternative that names a more
# general level replaces everything below it from the base block.
_NO_LOCATION, _ZONE, _REGION, _CLOUD = range(4)


def parse_task(text: str, *, source: str = "task.yaml", base_dir: Path | None = None) -> TaskSpec:
    """Parse and check a task file. Raises SpecError (only) for anything wrong with it.

    With `base_dir`, relative `workdir` / `file_mounts` paths are resolved against it
    and must exist; without it, paths are kept as written and not checked.
    """
    try:
        return _TaskParser(text, source, base_dir).parse()
    except SpecError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Our checks run before the model's; reaching here is a gap in them, still the
        # user's file, so it is reported as a spec problem rather than a crash.
        detail = _first_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise SpecError(f"{source}: {detail}") from None


def command_task(argv: Sequence[str], *, base_dir: Path, name: str | None = None) -> TaskSpec:
    """A one-command task (`skyctl submit -- CMD ...`).

    Like SkyPilot's `sky launch -- CMD`, it has no workdir: copying the caller's cwd
    (which may hold a virtualenv or datasets) would be a surprise. `base_dir` is kept
    in the signature for the API's sake and checked to be absolute.
    """
    if not argv or not any(arg.strip() for arg in argv):
        raise SpecError(
            "run: required; give a command after -- (e.g. skyctl submit -- echo hello)",
            field="run",
        )
    if name is not None:
        name = _checked_name(name, lambda detail: SpecError(f"name: {detail}", field="name"))
    if not base_dir.is_absolute():
        raise SpecError(f"base_dir: {str(base_dir)!r} must be an absolute path", field="base_dir")
    return TaskSpec(name=name or Path(argv[0]).name[:NAME_LIMIT] or None, run=shlex.join(argv))


def _first_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _checked_name(value: str, fail: Callable[[str], SpecError]) -> str:
    if len(value) > NAME_LIMIT:
        raise fail(f"{len(value)} characters is too long; keep it under {NAME_LIMIT}")
    if any(ch in value for ch in "\r\n\t\x00") or not value.isprintable():
        raise fail(f"{value!r} has control characters; use one line of plain text")
    return value


class _TaskParser:
    """One parse of one file; holds the source map so every complaint can be located."""

    def __init__(self, text: str, source: str, base_dir: Path | None) -> None:
        self.text = text
        self.source = source
        self.base_dir = base_dir

    def parse(self) -> TaskSpec:
        data, sources = load_yaml(self.text, self.source)
        self.problems = problems = Problems(sources)
        if data is None:
            raise problems.top(
                "the task file is empty; a task needs at least a `run:` command "
                "(e.g. run: echo hello)"
            )
        if not isinstance(data, Mapping):
            raise problems.top(
                f"the top level is {describe(data)}; it must be a mapping of fields "
                "such as name:, resources:, run:"
            )
        top = FieldReader(problems, "", data, TOP_FIELDS, TOP_UNSUPPORTED)
        raw = {key: top.take(key) for key in TOP_FIELDS if top.has(key)}
        top.finish()

        task: dict[str, Any] = {}
        resources, resources_recovery = self._resources(raw.get("resources"))
        task["resources"] = resources
        recovery = self._job_recovery("job_recovery", raw.get("job_recovery"))
        if recovery is not None and resources_recovery is not None:
            raise problems.at(
                "resources.job_recovery",
                "job_recovery is also set at the top level; keep only one of the two",
            )
        task["job_recovery"] = recovery or resources_recovery or JobRecoverySpec()

        if (name := raw.get("name")) is not None:
            task["name"] = _checked_name(
                as_text(problems, "name", name, what="a name"),
                lambda detail: problems.at("name", detail),
            )
        if (workdir := raw.get("workdir")) is not None:
            task["workdir"] = self._local_path("workdir", workdir, directory=True)
        if (num_nodes := raw.get("num_nodes")) is not None:
            task["num_nodes"] = self._integer("num_nodes", num_nodes, low=1, hint="e.g. 1 or 4")
        if (envs := raw.get("envs")) is not None:
            task["envs"] = self._envs(envs)
        if (file_mounts := raw.get("file_mounts")) is not None:
            task["file_mounts"] = self._file_mounts(file_mounts)
        task["setup"] = self._script("setup", raw.get("setup"))
        run = self._script("run", raw.get("run"))
        if run is None:
            raise problems.at(
                "run",
                "required; a batch job needs the command to run (e.g. run: python train.py)",
            )
        task["run"] = run
        if (deadline := raw.get("deadline")) is not None:
            task["deadline"] = self._deadline(deadline)
        if (runtime := raw.get("estimated_runtime")) is not None:
            task["estimated_runtime"] = self._estimated_runtime(runtime)
        if (project := raw.get("project")) is not None:
            task["project"] = as_text(problems, "project", project, what="a project name")
        if (priority := raw.get("priority")) is not None:
            task["priority"] = self._integer(
                "priority", priority, low=-100, high=100, hint="default 0"
            )
        if (objective := raw.get("objective")) is not None:
            task["objective"] = self._objective(objective)
        if (migrate := raw.get("migrate")) is not None:
            task["migrate"] = self._boolean("migrate", migrate)
        return TaskSpec(**task)

    # -- scalars -----------------------------------------------------------------

    def _integer(
        self, path: str, value: object, *, low: int, high: int | None = None, hint: str
    ) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.problems.at(path, f"{describe(value)} is not a whole number ({hint})")
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise self.problems.at(path, f"{value} is out of range; it must be {bound} ({hint})")
        return value

    def _boolean(self, path: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.problems.at(path, f"{describe(value)} is not true or false")
        return value

    def _script(self, path: str, value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, list):
            raise self.problems.at(
                path,
                "a list of commands is not supported; write one script with `|` "
                f"(e.g. {path}: |, then one command per line)",
            )
        if not isinstance(value, str):
            raise self.problems.at(path, f"{describe(value)} is not a shell script; write text")
        return value if value.strip() else None

    def _objective(self, value: object) -> Objective:
        allowed = ", ".join(objective.value for objective in Objective)
        if isinstance(value, str) and value.strip().lower() in {o.value for o in Objective}:
            return Objective(value.strip().lower())
        raise self.problems.at(
            "objective", f"{describe(value)} is not allowed; use one of: {allowed}"
        )

    # -- task-level fields -------------------------------------------------------

    def _local_path(self, path: str, value: object, *, directory: bool) -> str:
        if isinstance(value, Mapping):
            raise self.problems.at(
                path, "only a local path is supported for now (no git or bucket sources)"
            )
        text = as_text(self.problems, path, value, what="a local path")
        if _URL.match(text):
            raise self.problems.at(
                path,
                f"{text!r}: cloud storage and URLs are not supported yet; use a local path",
            )
        if self.base_dir is None:
            return text
        resolved = Path(text).expanduser()
        if not resolved.is_absolute():
            resolved = self.base_dir / resolved
        resolved = Path(_normalized(resolved))
        try:
            found = resolved.stat()
        except FileNotFoundError:
            raise self.problems.at(
                path, f"{text!r} does not exist (looked at {resolved})"
            ) from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise self.problems.at(
                path, f"{text!r} cannot be read (looked at {resolved}): {reason}"
            ) from None
        if directory and not stat.S_ISDIR(found.st_mode):
            raise self.problems.at(path, f"{text!r} is not a directory (looked at {resolved})")
        return str(resolved)

    def _envs(self, value: object) -> dict[str, str]:
        envs = as_string_map(self.problems, "envs", value, what="environment variable")
        for key in envs:
            if not _ENV_NAME.match(key):
                raise self.problems.at(
                    f"envs.{key}",
                    f"{key!r} is not a valid environment variable name; use letters, "
                    "digits and _ , not starting with a digit (e.g. MODEL_SIZE)",
                    of_key=True,
                )
        return envs

    def _file_mounts(self, value: object) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise self.problems.at(
                "file_mounts", f"{describe(value)} is not a mapping; write REMOTE_PATH: LOCAL_PATH"
            )
        mounts: dict[str, str] = {}
        for remote, local in value.items():
            path = f"file_mounts.{remote}"
            if not isinstance(remote, str) or not remote.strip():
                raise self.problems.at(
                    path, f"{describe(remote)} is not a remote path; quote it", of_key=True
                )
            if isinstance(local, Mapping):
                raise self.problems.at(
                    path,
                    "storage mounts (source/store/mode) are not supported yet; "
                    "use a local path (REMOTE_PATH: LOCAL_PATH)",
                )
            mounts[remote.strip()] = self._local_path(path, local, directory=False)
        return mounts

    def _deadline(self, value: object) -> DeadlineSpec:
        hint = f"use a duration ({DURATION_HINT}) or a time with timezone (e.g. 2026-12-01T18:00Z)"
        text = self.problems.sources.scalar_text("deadline") or str(value)
        if isinstance(value, str) and (seconds := parse_duration_text(value)) is not None:
            if seconds <= 0:
                raise self.problems.at("deadline", f"{value!r} must be longer than 0; {hint}")
            return DeadlineSpec(text=value.strip(), within_seconds=seconds)
        if is_number(value):
            raise self.problems.at("deadline", f"{describe(value)} has no unit; {hint}")
        if isinstance(value, str | dt.date):
            at = check_value(self.problems, "deadline", parse_instant, value, hint)
            return DeadlineSpec(text=text.strip(), at_epoch=at)
        raise self.problems.at("deadline", f"{describe(value)} is not a deadline; {hint}")

    def _estimated_runtime(self, value: object) -> dict[str, float]:
        hint = (
            f"use a duration ({DURATION_HINT}), a number of seconds, or a mapping "
            "ACCELERATOR: DURATION (e.g. {A100: 2h, V100: 5h})"
        )
        if not isinstance(value, Mapping):
            seconds = check_value(
                self.problems,
                "estimated_runtime",
                parse_duration,
                value,
                bare_number_unit=1.0,
                hint=hint,
            )
            return {ANY_ACCELERATOR: seconds}
        if not value:
            raise self.problems.at("estimated_runtime", f"the mapping is empty; {hint}")
        estimates: dict[str, float] = {}
        for key, item in value.items():
            path = f"estimated_runtime.{key}"
            if not isinstance(key, str) or not re.match(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.\-]*)$", key):
                raise self.problems.at(
                    path,
                    f"{describe(key)} is not an accelerator name (or * for any)",
                    of_key=True,
                )
            estimates[key] = check_value(
                self.problems, path, parse_duration, item, bare_number_unit=1.0, hint=hint
            )
        return estimates

    def _job_recovery(self, path: str, value: object) -> JobRecoverySpec | None:
        if value is None:
            return None
        if isinstance(value, str):
            if value.strip().lower() == "none":
                return JobRecoverySpec()
            name = check_value(self.problems, path, parse_strategy_name, value, STRATEGY_NAMES)
            return JobRecoverySpec(strategy=RecoveryStrategy(name))
        if not isinstance(value, Mapping):
            raise self.problems.at(
                path,
                f"{describe(value)} is not allowed; use a strategy name "
                f"({', '.join(STRATEGY_NAMES)}) or a mapping with strategy: and "
                "max_restarts_on_errors:",
            )
        reader = FieldReader(self.problems, path, value, JOB_RECOVERY_FIELDS)
        strategy, restarts = reader.take("strategy"), reader.take("max_restarts_on_errors")
        reader.finish()
        spec: dict[str, Any] = {}
        if strategy is not None and not (
            isinstance(strategy, str) and strategy.strip().lower() == "none"
        ):
            spec["strategy"] = RecoveryStrategy(
                check_value(
                    self.problems,
                    f"{path}.strategy",
                    parse_strategy_name,
                    strategy,
                    STRATEGY_NAMES,
                )
            )
        if restarts is not None:
            spec["max_restarts_on_errors"] = self._integer(
                f"{path}.max_restarts_on_errors", restarts, low=0, hint="e.g. 0 or 3"
            )
        return JobRecoverySpec(**spec)

    # -- resources ---------------------------------------------------------------

    def _resources(self, value: object) -> tuple[ResourcesSpec, JobRecoverySpec | None]:
        path = "resources"
        if value is None:
            return ResourcesSpec(), None
        if not isinstance(value, Mapping):
            raise self.problems.at(
                path, f"{describe(value)} is not a mapping; write fields such as accelerators:"
            )
        reader = FieldReader(self.problems, path, value, RESOURCE_FIELDS, RESOURCE_UNSUPPORTED)
        fields, _level = self._block(reader)
        has_any_of, has_ordered = reader.has("any_of"), reader.has("ordered")
        any_of, ordered = reader.take("any_of"), reader.take("ordered")
        recovery = self._job_recovery(f"{path}.job_recovery", reader.take("job_recovery"))
        reader.finish()
        if has_any_of and has_ordered:
            raise self.problems.at(
                f"{path}.ordered", "any_of and ordered cannot be used together; keep one of them"
            )
        merged_any_of = self._candidates(f"{path}.any_of", any_of, fields) if has_any_of else ()
        merged_ordered = self._candidates(f"{path}.ordered", ordered, fields) if has_ordered else ()
        return (
            ResourcesSpec(**fields, any_of=merged_any_of, ordered=merged_ordered),
            recovery,
        )

    def _candidates(
        self, path: str, value: object, base: dict[str, Any]
    ) -> tuple[ResourcesSpec, ...]:
        if isinstance(value, list) and not value:
            raise self.problems.at(
                path, "the list is empty; give at least one alternative, or leave the field out"
            )
        if not isinstance(value, list):
            raise self.problems.at(
                path,
                f"{describe(value)} is not a list of alternatives; write a list of resources "
                "mappings (e.g. - infra: aws/us-east-1)",
            )
        merged: list[ResourcesSpec] = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                raise self.problems.at(
                    item_path,
                    f"{describe(item)} is not a resources mapping (e.g. accelerators: A100:8)",
                )
            reader = FieldReader(
                self.problems,
                item_path,
                item,
                (*LOCATION_FIELDS, *HARDWARE_FIELDS),
                CANDIDATE_UNSUPPORTED,
            )
            own, level = self._block(reader)
            reader.finish()
            merged.append(ResourcesSpec(**_merge(base, own, level)))
        return tuple(merged)

    def _block(self, reader: FieldReader) -> tuple[dict[str, Any], int]:
        """The location and hardware fields of one resources mapping, as ResourcesSpec
        arguments (only those written), and how specific its location is."""
        raw = {key: reader.take(key) for key in (*LOCATION_FIELDS, *HARDWARE_FIELDS)}
        fields: dict[str, Any] = {}
        level = self._location(reader, raw, fields)
        problems = self.problems
        path = reader.path_of
        if (value := raw["accelerators"]) is not None:
            fields["accelerators"] = check_value(
                problems, path("accelerators"), parse_accelerators, value
            )
        if (value := raw["cpus"]) is not None:
            fields["cpus"] = check_value(problems, path("cpus"), parse_cpus, value)
        if (value := raw["memory"]) is not None:
            fields["memory_gib"] = check_value(problems, path("memory"), parse_memory, value)
        if (value := raw["instance_type"]) is not None:
            fields["instance_type"] = as_text(
                problems, path("instance_type"), value, what="an instance type"
            )
        if (value := raw["use_spot"]) is not None:
            fields["use_spot"] = self._boolean(path("use_spot"), value)
        if (value := raw["disk_size"]) is not None:
            fields["disk_size_gib"] = check_value(
                problems, path("disk_size"), parse_disk_size, value
            )
        if (value := raw["max_hourly_cost"]) is not None:
            fields["max_hourly_cost_micros"] = check_value(
                problems,
                path("max_hourly_cost"),
                parse_dollars_per_hour,
                value,
                problems.sources.scalar_text(path("max_hourly_cost")),
            )
        if (value := raw["countries"]) is not None:
            fields["countries"] = check_value(problems, path("countries"), parse_countries, value)
        if (value := raw["autostop"]) is not None:
            fields["autostop"] = self._autostop(path("autostop"), value)
        if (value := raw["image_id"]) is not None:
            fields["image_id"] = (
                as_string_map(problems, path("image_id"), value, what="region")
                if isinstance(value, Mapping)
                else as_text(problems, path("image_id"), value, what="an image id")
            )
        if (value := raw["labels"]) is not None:
            fields["labels"] = as_string_map(problems, path("labels"), value, what="label")
        return fields, level

    def _location(self, reader: FieldReader, raw: dict[str, object], fields: dict[str, Any]) -> int:
        infra = raw["infra"]
        if infra is not None:
            clashing = [key for key in ("cloud", "region", "zone") if raw[key] is not None]
            if clashing:
                raise self.problems.at(
                    reader.path_of("infra"),
                    f"infra and {'/'.join(clashing)} are both set; use only infra "
                    "(e.g. infra: aws/us-east-1) or only cloud/region/zone",
                )
            cloud, region, zone = check_value(
                self.problems, reader.path_of("infra"), parse_infra, infra
            )
            fields.update(cloud=cloud, region=region, zone=zone)
            return _CLOUD
        level = _NO_LOCATION
        if raw["cloud"] is not None:
            fields["cloud"] = check_value(
                self.problems, reader.path_of("cloud"), parse_cloud, raw["cloud"]
            )
            level = _CLOUD
        for key, key_level in (("region", _REGION), ("zone", _ZONE)):
            if raw[key] is not None:
                fields[key] = as_text(self.problems, reader.path_of(key), raw[key], what=f"a {key}")
                level = max(level, key_level)
        return level

    def _autostop(self, path: str, value: object) -> AutostopSpec:
        if isinstance(value, bool):
            return AutostopSpec(enabled=value, idle_minutes=DEFAULT_AUTOSTOP_MINUTES)
        if not isinstance(value, Mapping):
            return AutostopSpec(
                idle_minutes=check_value(self.problems, path, parse_autostop_minutes, value)
            )
        reader = FieldReader(self.problems, path, value, AUTOSTOP_FIELDS)
        minutes, down = reader.take("idle_minutes"), reader.take("down")
        reader.finish()
        spec: dict[str, Any] = {}
        if minutes is not None:
            spec["idle_minutes"] = self._integer(
                f"{path}.idle_minutes", minutes, low=0, hint="minutes, e.g. 10"
            )
        if down is not None:
            spec["down"] = self._boolean(f"{path}.down", down)
        return AutostopSpec(**spec)


def _merge(base: dict[str, Any], own: dict[str, Any], level: int) -> dict[str, Any]:
    """An alternative's fields over the base block's, as SkyPilot merges them.

    Locations merge by level, so `{region: us-west-2}` keeps the base's cloud but
    `{infra: gcp}` does not inherit the base's AWS region.
    """
    location = ("cloud", "region", "zone")
    merged = {key: value for key, value in base.items() if key not in location}
    merged.update({key: value for key, value in own.items() if key not in location})
    kept = {_CLOUD: (), _REGION: ("cloud",), _ZONE: ("cloud", "region")}.get(level, location)
    for key in location:
        value = base.get(key) if key in kept else own.get(key)
        if value is not None:
            merged[key] = value
    return merged


def _normalized(path: Path) -> str:
    # Collapse `..` without resolving symlinks: the user named this path, not its target.
    return os.path.normpath(path)
