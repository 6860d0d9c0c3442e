"""The job state machine: which state changes are legal (illegal ones are rejected, not ignored)."""

from __future__ import annotations

from skyd.errors import IllegalTransitionError
from skyd.model import ALLOWED_TRANSITIONS, JobState


def check_transition(job_id: int, current: JobState, target: JobState) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "none (terminal)"
        raise IllegalTransitionError(
            f"job {job_id}: cannot go from {current} to {target}; allowed from {current}: {allowed}"
        )
