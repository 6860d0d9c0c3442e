"""The daemon's launches as the spot policy's changeover reads them: each attempt's placement
to its run start, from the job events in the store, the newest of each cloud kept in memory."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from skyd.scheduler.booting import SSH_CLOUDS
from skyd.scheduler.changeover import QUANTILE, Changeover, estimate
from skyd.store import Store
from skyd.store.changeovers import StartedAttempt, started_after

WINDOW = 20  # the newest launches of each cloud the estimate is made from


def launch_seconds(attempt: StartedAttempt) -> float | None:
    """Seconds from placing the attempt to its run, or None when that is no changeover:
    a job bound to a cluster (nothing was launched), a run that went by between two polls
    (its RUNNING event is its end), a clock that went back."""
    if attempt.placement.get("cluster") or attempt.ran_unseen:
        return None
    seconds = attempt.running_at - attempt.placed_at
    return seconds if seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class _Launch:
    seq: int
    cloud: str
    seconds: float


class ChangeoverLog:
    """The newest launches of each cloud from the store, topped up by event sequence at
    every ask (one indexed query; a few microseconds when nothing is new), and the
    estimate for a set of clouds cached until a launch is added."""

    def __init__(
        self,
        *,
        store: Store,
        configured_hours: float,
        checkpoint_sync_s: float,
        window: int = WINDOW,
        quantile: float = QUANTILE,
    ) -> None:
        self.store = store
        self.configured_hours = configured_hours
        self.checkpoint_sync_s = checkpoint_sync_s
        self.window = window
        self.quantile = quantile
        self._by_cloud: dict[str, deque[_Launch]] = {}
        self._after_seq = 0
        self._estimates: dict[frozenset[str], Changeover] = {}

    def lost_seconds(self, cloud: str) -> float:
        """The work an interruption loses on `cloud` since its last checkpoint came back,
        on average: half the sync interval where the daemon syncs checkpoints over SSH."""
        return self.checkpoint_sync_s / 2.0 if cloud in SSH_CLOUDS else 0.0

    def refresh(self) -> int:
        """Take in the launches recorded since the last call. Returns how many."""
        # the first load reads the newest sixteen windows of all clouds together (each
        # cloud's window fills unless others launched far more often lately); later ones,
        # all that is new
        limit = self.window * 16 if self._after_seq == 0 else 100_000
        fresh = started_after(self.store.conn, self._after_seq, limit)
        added = 0
        for attempt in reversed(fresh):  # oldest first, so each deque ends with the newest
            self._after_seq = max(self._after_seq, attempt.seq)
            seconds = launch_seconds(attempt)
            cloud = str(attempt.placement.get("cloud") or "")
            if seconds is None or not cloud:
                continue
            held = self._by_cloud.setdefault(cloud, deque(maxlen=self.window))
            held.append(_Launch(attempt.seq, cloud, seconds))
            added += 1
        if added:
            self._estimates.clear()
        return added

    def for_clouds(self, clouds: Iterable[str]) -> Changeover:
        """The changeover for a job that may run on `clouds`: from the newest `window`
        launches on them together, plus the work an interruption loses on the worst of
        their clouds (the job may land on it)."""
        self.refresh()
        key = frozenset(clouds)
        held = self._estimates.get(key)
        if held is not None:
            return held
        pooled = sorted(
            (launch for cloud in key for launch in self._by_cloud.get(cloud, ())),
            key=lambda launch: launch.seq,
        )[-self.window :]
        estimated = estimate(
            [launch.seconds for launch in pooled],
            configured_hours=self.configured_hours,
            lost_seconds=max((self.lost_seconds(x.cloud) for x in pooled), default=0.0),
            quantile=self.quantile,
        )
        self._estimates[key] = estimated
        return estimated
