"""Cancels: the request stored before anything is killed, then the kill under the job's lock."""

from __future__ import annotations

from skyd.errors import PermissionDeniedError
from skyd.identity import Caller
from skyd.model import JobState
from skyd.scheduler.attempts import Attempts
from skyd.scheduler.transitions import Journal
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store import pipelines as pipeline_store
from skyd.store.records import JobRecord


class Cancels:
    """A kill may take minutes (the grace, then the buckets' write-back): the API stores the
    request and answers; the scheduler's next step of the job stops it (`finish`), and a
    daemon restarted meanwhile finds the request in the store and does the same."""

    def __init__(self, *, store: Store, journal: Journal, attempts: Attempts, grace: float) -> None:
        self.store = store
        self.journal = journal
        self.attempts = attempts
        self.grace = grace

    def request(self, job_id: int, caller: Caller) -> list[int]:
        """Store the cancel of the job and of its pipeline's later stages (they would wait for
        it forever); the ids asked for, the job first. Nothing is stored if the caller may not
        cancel one of them. An ended job stays as it is (its later stages are cancelled)."""
        ids = [job_id, *pipeline_store.later_stages(self.store, job_id)]
        for one in ids:
            job = job_store.get_job(self.store, one)
            if job.owner_uid != caller.uid and not caller.is_admin:
                raise PermissionDeniedError(
                    f"job {one} belongs to {job.owner_name}; "
                    "only its owner or an admin may cancel it"
                )
        self.journal.cancel_requested(ids, caller.name)
        return ids

    async def finish(self, job: JobRecord) -> None:
        """Stop a job whose cancel was asked: its processes killed (in their grace, buckets
        written back), its instances given back with the move to CANCELLED. Called under the
        job's lock.

        A job whose work ended by itself before the kill reached it keeps the outcome of its
        work (SUCCEEDED, or FAILED with no restart left), its event saying the cancel came
        too late: the outcome a user sees then does not depend on whether the watch step or
        the cancel's step looked first. The look comes again after the kill, for a process
        that ended between the first look and the SIGTERM (a runner records a kill that
        reached it as KILLED, never as an exit)."""
        ended = await self.attempts.own_end(job)
        if ended is not None:
            await self.attempts.stop(job, 0.0)  # nothing left to kill; its buckets charged
        else:
            await self.attempts.stop(job, self.grace)
            ended = await self.attempts.own_end(job)
        # no await from here to the commit (`ending` reads the store right before it)
        outcome = (
            self.attempts.ending(job, ended, self.attempts.clock.now())
            if ended is not None
            else self.attempts.outcome(
                job, JobState.CANCELLED, f"cancelled by {job.cancel_requested_by}"
            )
        )
        await self.attempts.give_back(job, outcome)
