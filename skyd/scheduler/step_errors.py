"""An unexpected exception in one job's step: retried on the next passes a capped number of
times, as an unmapped provider error is, then the job FAILS with the error (or, its cancel
asked, is CANCELLED with it), its processes killed and its instances given back. A bug met
by one job never leaves it stuck in its state (every pass raising again) and never stops the
other jobs' steps."""

from __future__ import annotations

import logging

from skyd.model import JobState
from skyd.scheduler.attempts import Attempts
from skyd.scheduler.launching import UNKNOWN_ERROR_TRIES
from skyd.scheduler.transitions import Journal, Transition
from skyd.store import Store
from skyd.store import jobs as job_store

log = logging.getLogger("skyd.scheduler")

# Steps of one job in a row that may raise before it fails: the launch ladder's cap.
STEP_ERROR_TRIES = UNKNOWN_ERROR_TRIES


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class StepErrors:
    """Per job, the steps in a row that raised (kept in memory: a restart starts afresh)."""

    def __init__(
        self, *, store: Store, journal: Journal, attempts: Attempts, kill_grace: float
    ) -> None:
        self.store = store
        self.journal = journal
        self.attempts = attempts
        self.kill_grace = kill_grace
        self._tries: dict[int, int] = {}

    def succeeded(self, job_id: int) -> None:
        self._tries.pop(job_id, None)

    async def failed(self, job_id: int, state: JobState, exc: Exception) -> None:
        """The step of `job_id` (then in `state`) raised `exc`: retry later or fail the job.

        Called under the job's lock."""
        tries = self._tries.get(job_id, 0) + 1
        self._tries[job_id] = tries
        log.error("job %d: its %s step raised (%d of %d)", job_id, state, tries,
                  STEP_ERROR_TRIES, exc_info=exc)  # fmt: skip
        job = job_store.get_job(self.store, job_id)
        if job.state.is_terminal:
            self._tries.pop(job_id, None)
            return
        error = describe(exc)
        data = {"error": type(exc).__name__, "state": str(state), "tries": tries}
        if tries < STEP_ERROR_TRIES:
            self.journal.note(
                job_id,
                "step_error",
                f"internal error in the {state} step: {error}; will retry "
                f"({tries} of {STEP_ERROR_TRIES})",
                data,
            )
            return
        reason = (
            f"internal error in the {state} step: {error} ({tries} steps failed so; its "
            "processes were killed and its instances given back)"
        )
        # A job whose cancel was asked ends CANCELLED all the same: its owner asked it to
        # stop, and it has (FAILED would read as the job's own failure).
        end = JobState.FAILED
        if job.cancelling:
            end = JobState.CANCELLED
            reason = f"cancelled by {job.cancel_requested_by}; {reason}"
        failed = Transition(job_id, end, reason, self.journal.clock.now(), "step_error", data)
        try:
            # FAILED commits with its instances marked for termination (see Attempts.release)
            await self.attempts.release(job, kill_grace=self.kill_grace, then=failed)
        except Exception as release_exc:
            if job_store.get_job(self.store, job_id).state.is_terminal:
                # FAILED, its instances marked: every pass finishes what is left to terminate
                self._tries.pop(job_id, None)
                log.exception("job %d: giving back its instances after its step failed", job_id)
                return
            # never FAILED with its processes still running: the next pass tries again
            log.exception("job %d: releasing it after its step failed", job_id)
            self.journal.note(
                job_id,
                "step_error",
                f"internal error in the {state} step: {error}; stopping the job failed "
                f"({describe(release_exc)}): will retry",
                data,
            )
            return
        self._tries.pop(job_id, None)
