"""What the planner records about a running job's move: proposed, or declined as not worth
what it costs, each naming the changeover the move was priced with (skyd.scheduler.changeover)
so `skyctl show` explains it as it does the spot policy's choices.

A move costs one changeover at the job's current hourly price (its nodes idle while the new
instance launches, boots and sets up). The changeover is the one the spot policy plans with:
measured of the recent launches on the clouds the job may run on, the configured figure a
floor. Each verdict is recorded once per job and destination, not at every pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from skyd.optimizer import AssignmentOption, AssignmentSettings, JobAssignment
from skyd.scheduler.changeover import Changeover

PROPOSED = "migration_proposed"
DECLINED = "migration_declined"
# a move must also save this share of what staying costs (the optimizer's own margin)
MARGIN = AssignmentSettings().migration_hysteresis


@dataclass(frozen=True, slots=True)
class MovePrice:
    """How the planner priced moving one running job: staying on `current` for the rest of
    its run, each other option, and one changeover at its current price."""

    current: str
    stay_micros: int
    migration_micros: int
    changeover: Changeover
    others: tuple[AssignmentOption, ...]


@dataclass(frozen=True, slots=True)
class MoveNote:
    """One verdict for the job's events: `kind` is PROPOSED or DECLINED."""

    job_id: int
    kind: str
    to: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


def _dollars(micros: int) -> str:
    return f"${micros / 1_000_000:.2f}"


class MoveNotes:
    """The verdicts said so far (job → (kind, destination)), so each is said once."""

    def __init__(self) -> None:
        self._said: dict[int, tuple[str, str]] = {}

    def keep_only(self, job_ids: Iterable[int]) -> None:
        """Forget the jobs that no longer run (or no longer allow a move)."""
        keep = set(job_ids)
        for job_id in [j for j in self._said if j not in keep]:
            del self._said[job_id]

    def note(self, job_id: int, price: MovePrice, assignment: JobAssignment) -> MoveNote | None:
        """The verdict on the plan's `assignment` of a running job, unless already said:
        a proposal when the plan moves it; a decline when it stays although another
        option is cheaper to finish on, because the saving does not pay for the move.
        None when nothing cheaper exists, or something else (a quota) kept it put."""
        changeover = price.changeover
        data: dict[str, Any] = {
            "move_cost": price.migration_micros / 1_000_000,
            "changeover": changeover.text(),
            "changeover_figures": changeover.figures(),
        }
        move_cost = _dollars(price.migration_micros)
        if assignment.migrate:
            to = assignment.option.key
            kind = PROPOSED
            reason = (
                f"moving to {to} would save more than the move costs ({move_cost}); "
                f"{changeover.text()}; {assignment.placement.reason}"
            )
        else:
            if not price.others:
                return None
            best = min(price.others, key=lambda o: (o.expected_cost_micros, o.key))
            saving = price.stay_micros - best.expected_cost_micros
            margin = round(MARGIN * price.stay_micros)
            if saving <= 0 or saving > price.migration_micros + margin:
                return None
            to = best.key
            kind = DECLINED
            data["saving"] = saving / 1_000_000
            reason = (
                f"staying on {price.current}: moving to {to} would save {_dollars(saving)}, "
                f"not more than the move costs ({move_cost}) and a {MARGIN:.0%} margin of "
                f"staying ({_dollars(margin)}); {changeover.text()}"
            )
        if self._said.get(job_id) == (kind, to):
            return None
        self._said[job_id] = (kind, to)
        return MoveNote(job_id, kind, to, reason, {"to": to, **data})
