"""Store records with every field filled in, for tests of code that reads them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from skyd.model import JobState
from skyd.store.records import JobRecord

_JOB = JobRecord(
    id=7,
    name="j",
    owner_uid=0,
    owner_name="root",
    project=None,
    priority=0,
    state=JobState.SETTING_UP,
    spec_json="{}",
    base_dir="/tmp",
    created_at=0.0,
    updated_at=0.0,
    started_at=None,
    ended_at=None,
    deadline=None,
    exit_code=None,
    reason=None,
    placement=None,
    attempt=1,
    preemptions=0,
    restarts=0,
    cost_micros=0,
)


def job_record(**changes: Any) -> JobRecord:
    """A job record (id 7, attempt 1, SETTING_UP, no placement) with `changes` applied."""
    return replace(_JOB, **changes)
