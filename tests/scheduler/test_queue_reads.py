"""The scheduler's reads of a long queue: the head and the backfill window come back in
scheduling order (priority, then age) over both waiting states, read per state from the
queue index; and a job's step leaves no per-job lock behind."""

from __future__ import annotations

import random
from pathlib import Path

from skyd.model import JobState
from skyd.store import jobs as job_store
from skyd.store import open_store
from skyd.testing.daemon import settings_for_tests
from skyd.testing.scheduler_world import one_pass, scheduler_world, submit_yaml

WAITING = (JobState.RECOVERING, JobState.PENDING)


def test_queue_pages_are_in_scheduling_order_across_both_waiting_states(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "state")
    try:
        rng = random.Random(15)
        jobs = []
        for n in range(300):
            job, _ = job_store.insert_job(
                store,
                name=f"j{n}",
                owner_uid=0,
                owner_name="root",
                project=None,
                priority=rng.choice((-5, 0, 0, 3, 10)),
                spec_json="{}",
                base_dir="/tmp",
                deadline=None,
                now=1.0,
            )
            jobs.append(job)
        # some wait again after a preemption: the queue spans both states
        store.conn.execute("UPDATE jobs SET state = 'RECOVERING' WHERE id % 3 = 0 AND id < 250")
        order = sorted(jobs, key=lambda j: (-j.priority, j.id))
        expected = [j.id for j in order]

        head = job_store.jobs_in_states(store, WAITING, limit=64)
        assert [j.id for j in head] == expected[:64]
        assert {j.state for j in head} == set(WAITING)
        # the window behind any job is what follows it in that order
        for at in (0, 63, 150, 298):
            after = (order[at].priority, order[at].id)
            window = job_store.jobs_in_states_after(store, WAITING, after=after, limit=40)
            assert [j.id for j in window] == expected[at + 1 : at + 41]
        newer = job_store.jobs_in_states(store, WAITING, limit=50, after_id=200)
        assert [j.id for j in newer] == [i for i in expected if i > 200][:50]
    finally:
        store.close()


async def test_a_steps_lock_is_dropped_when_the_step_is_done(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 0  # nothing can start: every job is only looked at
    settings.sim.enabled = True
    async with scheduler_world(settings) as (scheduler, _store):
        for _ in range(20):
            submit_yaml(scheduler, "name: t\nresources:\n  infra: local\nrun: 'true'\n")
        submit_yaml(scheduler, "name: t\nresources:\n  infra: sim\nrun: 'true'\n")
        await one_pass(scheduler)
        await one_pass(scheduler)
        # 100,000 waiting jobs would otherwise leave as many locks for every GC pass to walk
        assert scheduler.tasks.locks == {} and scheduler.tasks.lock_users == {}
