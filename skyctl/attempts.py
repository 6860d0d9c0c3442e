"""A job's attempts read from its event timeline: where each ran, for how long, how it ended.

The daemon keeps only the latest attempt's start on the job itself; a spot job recovered twice
ran three times, and its run time is the sum of the three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_PLACED = "PROVISIONING"
_RUNNING = "RUNNING"


class Attempt:
    """One try at running a job: placed at `began`, ran `run_seconds` in all, ended by `outcome`."""

    __slots__ = ("began", "number", "outcome", "placement", "run_seconds", "running_since")

    def __init__(self, number: int, began: float, placement: Mapping[str, Any] | None) -> None:
        self.number = number
        self.began = began
        self.placement = placement
        self.run_seconds = 0.0
        self.running_since: float | None = None
        self.outcome: str | None = None

    def stop_running(self, at: float) -> None:
        if self.running_since is not None:
            self.run_seconds += max(at - self.running_since, 0.0)
            self.running_since = None


def job_attempts(job: Mapping[str, Any], now: float) -> list[Attempt]:
    """The attempts in `job["events"]` (oldest first); an attempt still running counts to now."""
    events: Sequence[Mapping[str, Any]] = job.get("events") or []
    attempts: list[Attempt] = []
    for event in events:
        at = event.get("at")
        state = event.get("state")
        if not isinstance(at, int | float) or not state:
            continue
        current = attempts[-1] if attempts else None
        data = event.get("data") or {}
        if state == _PLACED and (current is None or current.outcome is not None):
            number = data.get("attempt") if isinstance(data.get("attempt"), int) else None
            placement = data.get("placement") if isinstance(data.get("placement"), dict) else None
            attempts.append(Attempt(number or len(attempts) + 1, at, placement))
            continue
        if state == _RUNNING:
            if current is None or current.outcome is not None:
                # a job the lab's own machines ran directly: no placement event came first
                current = Attempt(len(attempts) + 1, at, job.get("placement"))
                attempts.append(current)
            if current.running_since is None:
                current.running_since = at
            continue
        if current is None or current.outcome is not None:
            continue
        if state in (_PLACED, "SETTING_UP"):
            continue
        current.stop_running(at)
        kind = str(event.get("kind") or "")
        current.outcome = kind if kind not in ("state", "") else str(state).lower()
    if attempts and attempts[-1].running_since is not None:
        ended = job.get("ended_at")
        attempts[-1].stop_running(ended if isinstance(ended, int | float) else now)
        if attempts[-1].outcome is None and ended is None:
            attempts[-1].running_since = None
    return attempts


def total_run_seconds(attempts: Sequence[Attempt]) -> float:
    return sum(attempt.run_seconds for attempt in attempts)
