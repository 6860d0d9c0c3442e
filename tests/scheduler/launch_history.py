"""Launches recorded on a store file through the job transitions the scheduler makes: the
history the measured changeover (skyd.scheduler.changeover_log) is read from."""

from __future__ import annotations

from collections.abc import Sequence

from skyd.model import JobState
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store.changeovers import RAN_UNSEEN


class History:
    """Jobs taken through real transitions on a store file, as the scheduler records them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def attempt(
        self,
        cloud: str,
        placed_at: float,
        states: Sequence[tuple[JobState, float]],
        *,
        cluster: bool = False,
        unseen: bool = False,
    ) -> None:
        """A new job placed on `cloud` at `placed_at`, then moved through `states`."""
        job, _ = job_store.insert_job(
            self.store,
            name="j",
            owner_uid=0,
            owner_name="root",
            project=None,
            priority=0,
            spec_json="{}",
            base_dir="/",
            deadline=None,
            now=placed_at,
        )
        placement = {"cloud": cloud, "region": "r1", "zone": "z", "spot": True}
        if cluster:
            placement["cluster"] = True
        job_store.transition(
            self.store,
            job.id,
            JobState.PROVISIONING,
            now=placed_at,
            reason="placed",
            data={"attempt": 1, "placement": placement},
        )
        for state, at in states:
            data = {RAN_UNSEEN: True} if unseen and state == JobState.RUNNING else None
            job_store.transition(self.store, job.id, state, now=at, reason="", data=data)

    def ran(self, cloud: str, placed_at: float, seconds: float, **kw: bool) -> None:
        self.attempt(
            cloud,
            placed_at,
            [(JobState.SETTING_UP, placed_at + 1), (JobState.RUNNING, placed_at + seconds)],
            **kw,
        )
