"""The job state machine accepts exactly the transitions it documents."""

from __future__ import annotations

import itertools

import pytest

from skyd.errors import IllegalTransitionError
from skyd.lifecycle import check_transition
from skyd.model import ALLOWED_TRANSITIONS, TERMINAL_STATES, JobState


@pytest.mark.parametrize(("current", "target"), list(itertools.product(JobState, JobState)))
def test_every_pair_is_allowed_exactly_when_listed(current: JobState, target: JobState) -> None:
    if target in ALLOWED_TRANSITIONS[current]:
        check_transition(1, current, target)
    else:
        with pytest.raises(IllegalTransitionError):
            check_transition(1, current, target)


def test_terminal_states_are_final_and_the_happy_path_exists() -> None:
    for state in TERMINAL_STATES:
        assert ALLOWED_TRANSITIONS[state] == frozenset()
    path = [
        JobState.PENDING,
        JobState.PROVISIONING,
        JobState.SETTING_UP,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(1, current, target)
