"""Reading one mapping of a task file field by field, with errors that name the field and place."""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from skyd.errors import SpecError
from skyd.spec.values import ValueProblem, describe, is_number
from skyd.spec.yaml_source import SourceMap, child_path

T = TypeVar("T")

# Names people reach for from other tools; checked before spelling-based suggestions
# because spelling alone would, say, turn `gpus` into `cpus`.
FAMILIAR_NAMES = {
    "gpus": "accelerators",
    "gpu": "accelerators",
    "gpu_type": "accelerators",
    "accelerator_type": "accelerators",
    "spot": "use_spot",
    "env": "envs",
    "environment": "envs",
    "vars": "envs",
    "nodes": "num_nodes",
    "command": "run",
    "cmd": "run",
    "script": "run",
    "image": "image_id",
    "provider": "cloud",
    "machine_type": "instance_type",
    "vm_size": "instance_type",
    "disk": "disk_size",
    "mem": "memory",
    "max_price": "max_hourly_cost",
    "recovery": "job_recovery",
}


@dataclass(slots=True)
class Problems:
    """Turns a problem at a field path into a SpecError that says where it is, and keeps
    every problem found so a file's mistakes are all reported at once."""

    sources: SourceMap
    found: list[SpecError] = field(default_factory=list)
    # Problems that matter only when the task is run (a missing local path, an env
    # without a value): errors for submit, warnings for a dry run.
    lenient: bool = False
    warnings: list[str] = field(default_factory=list)

    def at(self, path: str, detail: str, *, of_key: bool = False) -> SpecError:
        where = self.sources.where(path, of_key=of_key)
        return SpecError(f"{where}: {path}: {detail}", field=path)

    def top(self, detail: str) -> SpecError:
        return SpecError(f"{self.sources.where('')}: {detail}")

    def report(self, error: SpecError) -> None:
        self.found.extend(error.details or (error,))

    def at_run_time(self, error: SpecError) -> None:
        """A problem that stops the task from running but not from being planned."""
        if self.lenient:
            self.warnings.append(error.message)
        else:
            self.report(error)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Record a SpecError raised inside and carry on with the next field."""
        try:
            yield
        except SpecError as error:
            self.report(error)

    def raise_found(self) -> None:
        if self.found:
            raise combined(self.found)


def combined(errors: list[SpecError]) -> SpecError:
    """One SpecError carrying several: the message has one line per problem."""
    if len(errors) == 1:
        return errors[0]
    flat = [detail for error in errors for detail in (error.details or (error,))]
    return SpecError(
        "\n".join(error.message for error in flat), field=flat[0].field, details=tuple(flat)
    )


class FieldReader:
    """The fields of one mapping; `take` each known one, then `finish` to refuse the rest."""

    def __init__(
        self,
        problems: Problems,
        path: str,
        mapping: Mapping[object, object],
        allowed: Iterable[str],
        unsupported: Mapping[str, str] | None = None,
    ) -> None:
        self.problems = problems
        self.path = path
        self._left = dict(mapping)
        self._allowed = tuple(allowed)
        self._unsupported = unsupported or {}

    def path_of(self, key: str) -> str:
        return child_path(self.path, key)

    def has(self, key: str) -> bool:
        return key in self._left

    def take(self, key: str) -> object:
        """The value of `key` (None when absent or written without a value)."""
        return self._left.pop(key, None)

    def error(self, key: str, detail: str) -> SpecError:
        return self.problems.at(self.path_of(key), detail)

    def finish(self) -> None:
        """Report every field left over (each one, not only the first)."""
        for key in self._left:
            name = str(key)
            path = self.path_of(name)
            if not isinstance(key, str):
                detail = f"{describe(key)} is not a field name; field names are words"
            elif key in self._unsupported:
                detail = self._unsupported[key]
            else:
                detail = f"unknown field; {self._suggestion(key)}"
            self.problems.report(self.problems.at(path, detail, of_key=True))

    def _suggestion(self, key: str) -> str:
        familiar = FAMILIAR_NAMES.get(key.lower())
        if familiar in self._allowed:
            return f"did you mean '{familiar}'?"
        close = difflib.get_close_matches(key.lower(), self._allowed, n=1, cutoff=0.6)
        if close:
            return f"did you mean '{close[0]}'?"
        return "allowed fields here are: " + ", ".join(self._allowed)


def as_text(problems: Problems, path: str, value: object, *, what: str) -> str:
    """A non-empty single string; numbers are kept exactly as written in the file."""
    if is_number(value):
        return problems.sources.scalar_text(path) or str(value)
    if not isinstance(value, str) or not value.strip():
        raise problems.at(path, f"{describe(value)} is not {what}; write it as text")
    return value.strip()


def as_string_map(problems: Problems, path: str, value: object, *, what: str) -> dict[str, str]:
    """A mapping of text to text (envs, labels); scalar values are kept as written."""
    if not isinstance(value, Mapping):
        raise problems.at(path, f"{describe(value)} is not a mapping; write KEY: VALUE lines")
    result: dict[str, str] = {}
    for key, item in value.items():
        item_path = child_path(path, key)
        if not isinstance(key, str):
            raise problems.at(
                item_path, f"{describe(key)} is not a valid {what} name; quote it", of_key=True
            )
        if isinstance(item, str):
            result[key] = item
        elif is_number(item) or isinstance(item, bool):
            result[key] = problems.sources.scalar_text(item_path) or str(item)
        elif item is None:
            raise problems.at(item_path, f"has no value; give it one (e.g. {key}: value)")
        else:
            raise problems.at(item_path, f"{describe(item)} is not text; quote it or flatten it")
    return result


def check_value(
    problems: Problems, path: str, parser: Callable[..., T], *args: object, **kwargs: object
) -> T:
    """Runs a value parser, turning its ValueProblem into a SpecError located at `path`."""
    try:
        return parser(*args, **kwargs)
    except ValueProblem as problem:
        raise problems.at(path, str(problem)) from None
