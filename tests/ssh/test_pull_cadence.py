"""The wait between checkpoint pulls: Young's rule in money, within the configured bounds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from skyd.model import RunPhase, RunStatus
from skyd.providers.ssh import SshConnections
from skyd.runner.pull_cadence import PullClock, PullPrice, pull_interval_s
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh_checkpoints import CheckpointSync


def test_the_wait_balances_egress_against_the_work_a_preemption_loses() -> None:
    # $0.45 a pull (5 GB out of AWS), $1 an hour of instance, 0.2 preemptions an hour:
    # sqrt(2 * 0.45 / (0.2 * 1)) = 2.12 h, where pulls ($0.21/h) and lost work ($0.21/h)
    # cost the same
    price = PullPrice(pull_micros=450_000, hourly_micros=1_000_000, losses_per_hour=0.2)
    wait = pull_interval_s(price, floor_s=10.0, ceiling_s=86_400.0)
    assert math.isclose(wait, math.sqrt(4.5) * 3600.0)
    hours = wait / 3600.0
    pulls, lost = 0.45 / hours, 0.2 * 1.0 * hours / 2
    assert math.isclose(pulls, lost)
    # either side of it costs more an hour
    for other in (hours * 0.8, hours * 1.25):
        assert 0.45 / other + 0.2 * other / 2 > pulls + lost


def test_the_wait_stays_within_its_bounds() -> None:
    big = PullPrice(pull_micros=450_000, hourly_micros=1_000_000, losses_per_hour=0.2)
    assert pull_interval_s(big, floor_s=10.0, ceiling_s=1800.0) == 1800.0
    # a few KB on a dear, often-lost instance: back to the floor
    small = PullPrice(pull_micros=1, hourly_micros=30_000_000, losses_per_hour=2.0)
    assert pull_interval_s(small, floor_s=10.0, ceiling_s=1800.0) == 10.0


def test_free_pulls_keep_the_floor_and_instances_never_lost_wait_the_ceiling() -> None:
    assert pull_interval_s(None, floor_s=10.0, ceiling_s=1800.0) == 10.0
    free = PullPrice(pull_micros=0, hourly_micros=1_000_000, losses_per_hour=0.5)
    assert pull_interval_s(free, floor_s=10.0, ceiling_s=1800.0) == 10.0
    on_demand = PullPrice(pull_micros=450_000, hourly_micros=1_000_000, losses_per_hour=0.0)
    assert pull_interval_s(on_demand, floor_s=10.0, ceiling_s=1800.0) == 1800.0


def looked(clock: PullClock, times_and_marks: list[tuple[float, str]]) -> list[bool]:
    return [clock.seen(mark, at) for at, mark in times_and_marks]


def test_the_clock_learns_the_time_between_saves_from_what_the_looks_see() -> None:
    clock = PullClock()
    # the first look only sets what is there; a change is fresh; gaps need two changes
    marks = [(0.0, "a"), (10.0, "a"), (20.0, "b"), (30.0, "b"), (80.0, "c"), (120.0, "d")]
    assert looked(clock, marks) == [False, False, True, False, True, True]
    assert clock.save_s == (60.0 + 40.0) / 2  # halfway to the newest gap


def test_frequent_saves_are_pulled_as_they_land_once_the_wait_less_half_a_save_is_over() -> None:
    clock = PullClock(save_s=60.0)
    clock.pulled(now=1000.0, wait_s=600.0)
    assert not clock.worth_pulling(1000.0 + 700.0, fresh=False)  # nothing new to pull
    clock.pending = True  # a look saw a save the pull did not take
    threshold = (math.sqrt(60.0**2 + 4 * 600.0**2) - 60.0) / 2  # 570.4 s: wait - s/2, about
    assert 569.0 < threshold < 571.0
    assert not clock.worth_pulling(1000.0 + threshold - 1, fresh=True)
    assert clock.worth_pulling(1000.0 + threshold + 1, fresh=True)
    # a save already old then is left for a fresh one, unless none comes within a save
    assert not clock.worth_pulling(1000.0 + 600.0, fresh=False)
    assert clock.worth_pulling(1000.0 + 660.0, fresh=False)


def test_saves_rarer_than_the_wait_are_each_pulled_as_they_land() -> None:
    # a wait of 5.7 min and a save every 5 min: pulling every save loses half as much work
    # for a little more egress than pulling at 5.7 min the save made 0.7 min before
    clock = PullClock(save_s=300.0)
    clock.pulled(now=0.0, wait_s=342.0)
    clock.pending = True
    assert clock.worth_pulling(300.0, fresh=True)  # threshold 214 s: wait² / (t + s)
    assert not clock.worth_pulling(350.0, fresh=False)  # stale: only after wait + s
    never_priced = PullClock()
    assert never_priced.worth_pulling(0.0, fresh=False)


async def test_a_jobs_next_attempt_starts_with_the_save_pace_its_last_one_learned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saves come at the job's pace, whatever instance it is on: the clock of a new attempt
    of the same job knows it from the first look, so its first saves are not left waiting
    while it learns it again."""
    sync = CheckpointSync(
        SshConnections(),
        command_timeout_s=5.0,
        transfer_timeout_s=5.0,
        sync_s=0.0,
        sync_max_s=3600.0,
        meter=None,
        pricing=lambda pull: PullPrice(1_000, 1_000_000, 0.5),
    )
    marks = iter(f"save-{i}" for i in range(100))

    async def look(attempt_dir: Path) -> str:
        return next(marks)  # a new save at every look

    async def pull(attempt_dir: Path, *, force: bool = False) -> bool:
        sync._marks[str(attempt_dir)] = await look(attempt_dir)
        sync._reported[str(attempt_dir)] = CheckpointPull(attempt_dir, "aws", "i-1", 10, "k")
        return True

    monkeypatch.setattr(sync, "_checkpoint_mark", look)
    monkeypatch.setattr(sync, "pull", pull)
    running = RunStatus(RunPhase.RUN)
    first = tmp_path / "jobs" / "7" / "attempt-1"
    for _ in range(4):
        await sync.maybe_pull(first, running)
    assert sync._clocks[str(first)].save_s is not None
    second = first.with_name("attempt-2")
    await sync.maybe_pull(second, running)
    assert sync._clocks[str(second)].save_s == sync._clocks[str(first)].save_s
    other_job = tmp_path / "jobs" / "8" / "attempt-1"
    await sync.maybe_pull(other_job, running)
    assert sync._clocks[str(other_job)].save_s is None
