"""Task fields about when and how a job runs: objective, deadline, estimated runtime, recovery."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from skyd.spec.fields import FieldReader, Problems, check_value
from skyd.spec.parse_resources import ResourcesParser
from skyd.spec.task import (
    ANY_ACCELERATOR,
    DeadlineSpec,
    JobRecoverySpec,
    Objective,
    RecoveryStrategy,
)
from skyd.spec.values import (
    DURATION_HINT,
    describe,
    is_number,
    parse_duration,
    parse_duration_text,
    parse_instant,
    parse_strategy_name,
)

JOB_RECOVERY_FIELDS = ("strategy", "max_restarts_on_errors")
STRATEGY_NAMES = tuple(strategy.value for strategy in RecoveryStrategy)


class ScheduleFields:
    """The task parser's scheduling fields; the parser supplies `problems` and `resources`."""

    problems: Problems
    resources: ResourcesParser

    def _objective(self, value: object) -> Objective:
        allowed = ", ".join(objective.value for objective in Objective)
        if isinstance(value, str) and value.strip().lower() in {o.value for o in Objective}:
            return Objective(value.strip().lower())
        raise self.problems.at(
            "objective", f"{describe(value)} is not allowed; use one of: {allowed}"
        )

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
            spec["max_restarts_on_errors"] = self.resources.integer(
                f"{path}.max_restarts_on_errors", restarts, low=0, hint="e.g. 0 or 3"
            )
        return JobRecoverySpec(**spec)
