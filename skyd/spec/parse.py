"""Task YAML (SkyPilot format plus skyd fields) → TaskSpec, or a SpecError saying what to fix.

Every problem in a file is reported at once, each with `file:line:col`. A file of several
YAML documents is SkyPilot's pipeline: an optional first document with only `name`, then
one task per document.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skyd.errors import SpecError
from skyd.spec.data_sizes import data_sizes
from skyd.spec.fields import FieldReader, Problems, as_text, combined
from skyd.spec.limits import (
    DEFAULT_MAX_WORKDIR_BYTES,
    MAX_COMMAND_ARGS,
    MAX_COMMAND_BYTES,
    MAX_ENVIRONMENT_BYTES,
    MAX_NUM_NODES,
    human_bytes,
    text_problem,
)
from skyd.spec.overrides import Overrides, apply_overrides
from skyd.spec.parse_files import FileFields
from skyd.spec.parse_resources import ResourcesParser
from skyd.spec.parse_schedule import ScheduleFields
from skyd.spec.task import (
    JobRecoverySpec,
    PipelineSpec,
    TaskSpec,
)
from skyd.spec.values import (
    describe,
    is_number,
)
from skyd.spec.vocabulary import Vocabulary
from skyd.spec.yaml_source import SourceMap, load_yaml_documents

TOP_FIELDS = (
    "name",
    "workdir",
    "num_nodes",
    "resources",
    "envs",
    "secrets",
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
    "inputs",
    "outputs",
)
TOP_UNSUPPORTED = {
    "service": (
        "SkyServe services are not supported yet: skyd runs batch jobs and clusters, so run "
        "the server with `skyctl launch` (resources.ports records its port) or remove service:"
    ),
    "config": "per-task config overrides are not supported yet",
    "event_callback": "not supported yet",
    "volumes": "not supported yet; use file_mounts with local paths",
}
NAME_LIMIT = 200
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How strictly to read a file.

    `base_dir`: relative local paths resolve against it (the submitter's working directory,
    as in SkyPilot) and must exist; None keeps paths as written. `lenient`: problems that
    only matter when the task runs (missing local paths, envs without values) become
    warnings, for a dry run. `require_run`: a batch job needs `run:`; a cluster does not.
    """

    base_dir: Path | None = None
    overrides: Overrides | None = None
    vocabulary: Vocabulary | None = None
    lenient: bool = False
    require_run: bool = True
    max_workdir_bytes: int = DEFAULT_MAX_WORKDIR_BYTES


@dataclass(slots=True)
class ParsedFile:
    """A task file read in full: one stage, or a pipeline's stages, and any warnings."""

    pipeline: PipelineSpec
    warnings: list[str] = field(default_factory=list)


def parse_file(
    text: str, *, source: str = "task.yaml", options: ParseOptions | None = None
) -> ParsedFile:
    """Parse and check a task file of one or more documents. Raises SpecError (only),
    carrying every problem found in every document."""
    options = options or ParseOptions()
    try:
        return _parse_file(text, source, options)
    except SpecError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Our checks run before the model's; reaching here is a gap in them, still the
        # user's file, so it is reported as a spec problem rather than a crash.
        detail = _first_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise SpecError(f"{source}: {detail}") from None


def parse_task(
    text: str,
    *,
    source: str = "task.yaml",
    base_dir: Path | None = None,
    options: ParseOptions | None = None,
) -> TaskSpec:
    """Parse and check a single-task file. Raises SpecError (only) for anything wrong with it.

    With `base_dir`, relative `workdir` / `file_mounts` paths are resolved against it
    and must exist; without it, paths are kept as written and not checked.
    """
    if options is None:
        options = ParseOptions(base_dir=base_dir)
    parsed = parse_file(text, source=source, options=options)
    stages = parsed.pipeline.stages
    if len(stages) != 1:
        raise SpecError(
            f"{source}: this file is a pipeline of {len(stages)} tasks; only `skyctl submit` "
            "runs pipelines, give this command a file with one task"
        )
    return stages[0]


def _parse_file(text: str, source: str, options: ParseOptions) -> ParsedFile:
    if options.base_dir is not None:
        problem = text_problem(str(options.base_dir), what="the working directory")
        if problem:
            raise SpecError(f"base_dir: {problem}", field="base_dir")
    documents = load_yaml_documents(text, source)
    if not documents or all(data is None for data, _ in documents):
        raise SpecError(
            f"{source}: the task file is empty; a task needs at least a `run:` command "
            "(e.g. run: echo hello)"
        )
    name: str | None = None
    first, first_sources = documents[0]
    if len(documents) > 1 and isinstance(first, Mapping) and set(first) == {"name"}:
        # SkyPilot's pipeline header: a first document naming the whole chain
        problems = Problems(first_sources)
        name = _checked_name(
            as_text(problems, "name", first["name"], what="a name"),
            lambda detail: problems.at("name", detail),
        )
        documents = documents[1:]
    stages: list[TaskSpec] = []
    found: list[SpecError] = []
    warnings: list[str] = []
    for data, sources in documents:
        parser = _TaskParser(data, sources, options)
        try:
            stages.append(parser.parse())
        except SpecError as error:
            found.append(error)
        warnings.extend(parser.problems.warnings)
    if found:
        raise combined(found)
    return ParsedFile(PipelineSpec(name=name, stages=tuple(stages)), warnings)


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
    if len(argv) > MAX_COMMAND_ARGS:
        raise SpecError(
            f"command: {len(argv):,} arguments is too many (at most {MAX_COMMAND_ARGS:,}); "
            "put them in a file and have the command read it",
            field="command",
        )
    for index, arg in enumerate(argv):
        problem = text_problem(arg, what=f"argument {index + 1}")
        if problem:
            raise SpecError(f"command: {problem}", field="command")
    if sum(len(arg.encode("utf-8", "surrogateescape")) + 1 for arg in argv) > MAX_COMMAND_BYTES:
        raise SpecError(
            f"command: the arguments add up to more than {human_bytes(MAX_COMMAND_BYTES)}; "
            "put the data in a file and have the command read it",
            field="command",
        )
    if name is not None:
        name = _checked_name(name, lambda detail: SpecError(f"name: {detail}", field="name"))
    problem = text_problem(str(base_dir), what="base_dir")
    if problem:
        raise SpecError(f"base_dir: {problem}", field="base_dir")
    if not base_dir.is_absolute():
        raise SpecError(f"base_dir: {str(base_dir)!r} must be an absolute path", field="base_dir")
    run = shlex.join(argv)
    problem = text_problem(run, what="the command line")
    if problem:
        raise SpecError(f"command: {problem}", field="command")
    return TaskSpec(name=name or Path(argv[0]).name[:NAME_LIMIT] or None, run=run)


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


class _TaskParser(ScheduleFields, FileFields):
    """One parse of one document; holds the source map so every complaint can be located."""

    options: ParseOptions

    def __init__(self, data: object, sources: SourceMap, options: ParseOptions) -> None:
        self.data = data
        self.options = options
        self.base_dir = options.base_dir
        self.problems = Problems(sources, lenient=options.lenient)
        self.resources = ResourcesParser(self.problems, options.vocabulary)

    def parse(self) -> TaskSpec:
        problems = self.problems
        data = self.data
        if data is None:
            raise problems.top(
                "this document is empty; a task needs at least a `run:` command "
                "(e.g. run: echo hello)"
            )
        if not isinstance(data, Mapping):
            raise problems.top(
                f"the top level is {describe(data)}; it must be a mapping of fields "
                "such as name:, resources:, run:"
            )
        data = dict(data)
        if self.options.overrides is not None:
            apply_overrides(data, self.options.overrides, problems.sources)
        top = FieldReader(problems, "", data, TOP_FIELDS, TOP_UNSUPPORTED)
        raw = {key: top.take(key) for key in TOP_FIELDS if top.has(key)}
        top.finish()

        task: dict[str, Any] = {}
        resources_recovery: object = None
        with problems.guard():
            task["resources"], resources_recovery = self.resources.parse(raw.get("resources"))
        recovery = resources = None
        with problems.guard():
            recovery = self._job_recovery("job_recovery", raw.get("job_recovery"))
        with problems.guard():
            resources = self._job_recovery("resources.job_recovery", resources_recovery)
        if recovery is not None and resources is not None:
            problems.report(
                problems.at(
                    "resources.job_recovery",
                    "job_recovery is also set at the top level; keep only one of the two",
                )
            )
        task["job_recovery"] = recovery or resources or JobRecoverySpec()

        envs: dict[str, str] = {}
        secrets: dict[str, str] = {}
        with problems.guard():
            if (value := raw.get("envs")) is not None:
                envs = self._variables("envs", value, option="--env")
        with problems.guard():
            if (value := raw.get("secrets")) is not None:
                secrets = self._variables("secrets", value, option="--secret")
        for key in sorted(set(envs) & set(secrets)):
            problems.report(
                problems.at(f"secrets.{key}", f"{key} is also in envs; keep it only in secrets")
            )
        with problems.guard():
            self._environment_size({**envs, **secrets})
        self.envs = envs
        task["envs"] = {**envs, **secrets}
        task["secret_names"] = tuple(secrets)

        steps: list[tuple[str, Callable[[Any], None]]] = [
            ("name", lambda v: task.update(name=self._name(v))),
            ("workdir", lambda v: self._workdir_field(v, task)),
            ("num_nodes", lambda v: task.update(num_nodes=self._num_nodes(v))),
            ("file_mounts", lambda v: self._file_mounts(v, envs, task)),
            ("deadline", lambda v: task.update(deadline=self._deadline(v))),
            ("inputs", lambda v: task.update(inputs=data_sizes(problems, "inputs", v))),
            ("outputs", lambda v: task.update(outputs=data_sizes(problems, "outputs", v))),
            (
                "estimated_runtime",
                lambda v: task.update(estimated_runtime=self._estimated_runtime(v)),
            ),
            (
                "project",
                lambda v: task.update(
                    project=as_text(problems, "project", v, what="a project name")
                ),
            ),
            (
                "priority",
                lambda v: task.update(
                    priority=self.resources.integer(
                        "priority", v, low=-100, high=100, hint="default 0"
                    )
                ),
            ),
            ("objective", lambda v: task.update(objective=self._objective(v))),
            ("migrate", lambda v: task.update(migrate=self.resources.boolean("migrate", v))),
        ]
        for key, step in steps:
            if (value := raw.get(key)) is not None:
                with problems.guard():
                    step(value)
        with problems.guard():
            task["setup"] = self._script("setup", raw.get("setup"))
        run = None
        before = len(problems.found)
        with problems.guard():
            run = self._script("run", raw.get("run"))
        if run is None and self.options.require_run and len(problems.found) == before:
            problems.report(
                problems.at(
                    "run",
                    "required; a batch job needs the command to run (e.g. run: python train.py)",
                )
            )
        task["run"] = run or ""
        problems.raise_found()
        return TaskSpec(**task)

    # -- scalars -----------------------------------------------------------------

    def _name(self, value: object) -> str:
        return _checked_name(
            as_text(self.problems, "name", value, what="a name"),
            lambda detail: self.problems.at("name", detail),
        )

    def _num_nodes(self, value: object) -> int:
        return self.resources.integer(
            "num_nodes",
            value,
            low=1,
            high=MAX_NUM_NODES,
            hint="the number of machines the job runs on at once, e.g. 1 or 4",
        )

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
        problem = text_problem(value, what=f"the {path} script")
        if problem:
            raise self.problems.at(path, problem)
        return value if value.strip() else None

    # -- task-level fields -------------------------------------------------------

    def _variables(self, section: str, value: object, *, option: str) -> dict[str, str]:
        """`envs` or `secrets`: names checked; a name without a value needs `option`."""
        problems = self.problems
        if not isinstance(value, Mapping):
            raise problems.at(
                section, f"{describe(value)} is not a mapping; write KEY: VALUE lines"
            )
        result: dict[str, str] = {}
        for key, item in value.items():
            item_path = f"{section}.{key}"
            if not isinstance(key, str) or not _ENV_NAME.match(key):
                problems.report(
                    problems.at(
                        item_path,
                        f"{describe(key)} is not a valid environment variable name; use "
                        "letters, digits and _ , not starting with a digit (e.g. MODEL_SIZE)",
                        of_key=True,
                    )
                )
                continue
            if item is None:
                problems.at_run_time(
                    problems.at(
                        item_path,
                        f"has no value; pass it with {option} {key}=VALUE "
                        f"(or {option} {key} to use your environment's {key})",
                    )
                )
                result[key] = ""
                continue
            if isinstance(item, str):
                text = item
            elif is_number(item) or isinstance(item, bool):
                text = problems.sources.scalar_text(item_path) or str(item)
            else:
                problems.report(
                    problems.at(item_path, f"{describe(item)} is not text; quote it or flatten it")
                )
                continue
            problem = text_problem(f"{key}={text}", what=f"{key}")
            if problem:
                problems.report(problems.at(item_path, problem))
                continue
            result[key] = text
        return result

    def _environment_size(self, variables: Mapping[str, str]) -> None:
        total = sum(
            len(k) + len(v.encode("utf-8", "surrogateescape")) + 2 for k, v in variables.items()
        )
        if total > MAX_ENVIRONMENT_BYTES:
            raise self.problems.at(
                "envs",
                f"the variables add up to {human_bytes(total)}; at most "
                f"{human_bytes(MAX_ENVIRONMENT_BYTES)} fit in a job's environment: put the "
                "data in a file (workdir or file_mounts)",
            )

    # -- resources ---------------------------------------------------------------
