"""Spot availability per offering as the daemon has seen it, kept in the store and cached.

Written by the market poller (every availability a source reports, e.g. the sim's trace),
by the scheduler (skyd's own signals: a spot launch refused for capacity, a preemption, a
spot launch that worked, for scopes no source feeds) and, once per start, from a
provider's recorded past (the sim's trace before now). Read by the spot policy's
recovery step: each offering's change points from the store are cached in memory and
topped up by row id, so a decision reads only what is new and resamples in numpy.
"""

from __future__ import annotations

import bisect
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from skyd.clock import Clock
from skyd.config import RecoverySettings
from skyd.market.availability_grid import (
    MAX_SAMPLES,
    BoolArray,
    FloatArray,
    ZoneHistory,
    empty,
    narrow,
    resample,
    sample_count,
)
from skyd.store import Store
from skyd.store import availability as availability_store

DEFAULT_STEP_SECONDS = 600.0
PRUNE_EVERY_SECONDS = 3600.0
PAST_SOURCE = "sim-trace"


@runtime_checkable
class RecordedPast(Protocol):
    """A provider whose spot market has a recorded past (the sim cloud's trace)."""

    @property
    def availability_step_seconds(self) -> float:
        """Clock seconds between its probes."""
        ...

    def availability_since(self, since: float) -> list[tuple[str, float, bool]]:
        """(offer key, clock time, available) change points from the one in force at
        `since` until now."""
        ...


def history_step_seconds(settings: RecoverySettings, providers: Mapping[str, object]) -> float:
    """The grid step: the setting, else the finest probe interval a provider has (the
    sim's trace tick on the daemon's clock), else ten minutes."""
    if settings.history_step_seconds > 0:
        return settings.history_step_seconds
    ticks = [
        p.availability_step_seconds
        for p in providers.values()
        if isinstance(p, RecordedPast) and p.availability_step_seconds > 0
    ]
    return min(ticks) if ticks else DEFAULT_STEP_SECONDS


class AvailabilityLog:
    """The daemon's record of spot availability per offering key, on the policy's grid."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        settings: RecoverySettings,
        providers: Mapping[str, object],
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.providers = providers
        self.step_seconds = history_step_seconds(settings, providers)
        self._points: dict[str, list[tuple[float, int, bool]]] = {}  # (at, id, available)
        self._arrays: dict[str, tuple[FloatArray, BoolArray]] = {}
        self._grids: dict[str, tuple[float, ZoneHistory]] = {}  # scope → (now, widest grid)
        self._after_id = 0
        self._past_loaded = False
        self._pruned_at = -math.inf
        self._refreshed_at = -math.inf

    @property
    def keep_seconds(self) -> float:
        return self.settings.history_keep_days * 86400.0

    def refresh(self) -> None:
        """Take in what was recorded since the last call (and the providers' past, once)."""
        now = self.clock.now()
        if not self._past_loaded:
            self._past_loaded = True
            self.load_past(now)
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            with self.store.transaction() as conn:
                pruned = availability_store.prune(conn, now - self.keep_seconds)
            if pruned:
                self._points.clear()
                self._arrays.clear()
                self._grids.clear()
                self._after_id = 0
        since = now - self.keep_seconds
        rows = availability_store.rows_after(self.store.conn, self._after_id, since)
        for row in rows:
            points = self._points.setdefault(row.scope, [])
            bisect.insort(points, (row.at, row.id, row.available))
            self._arrays.pop(row.scope, None)
            self._grids.pop(row.scope, None)
            self._after_id = max(self._after_id, row.id)

    def load_past(self, now: float) -> int:
        """Record the providers' past that the store does not hold (before this daemon
        first watched, or while it was down). Returns the rows written."""
        written = 0
        since = now - self.keep_seconds
        for provider in self.providers.values():
            if not isinstance(provider, RecordedPast):
                continue
            by_scope: dict[str, list[tuple[float, bool]]] = {}
            for scope, at, available in provider.availability_since(since):
                by_scope.setdefault(scope, []).append((at, available))
            with self.store.transaction() as conn:
                for scope, points in by_scope.items():
                    written += _fill(conn, scope, sorted(points))
        return written

    def zone_history(self, scope: str, since: float) -> ZoneHistory:
        """`scope`'s availability from `since` until now on the grid (empty: never seen)."""
        now = self.clock.now()
        if now != self._refreshed_at:
            self._refreshed_at = now
            self.refresh()
        arrays = self._arrays.get(scope)
        if arrays is None:
            points = self._points.get(scope)
            if not points:
                return empty(self.step_seconds / 3600.0)
            arrays = (
                np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points)),
                np.fromiter((p[2] for p in points), dtype=np.bool_, count=len(points)),
            )
            self._arrays[scope] = arrays
        times, values = arrays
        # Jobs submitted at different times ask for windows on the same grid (it ends at
        # now): one resample per offering and instant serves them all, each a suffix of it.
        step = self.step_seconds
        count = sample_count(float(times[0]), now=now, since=since, step_seconds=step)
        if count == 0:
            return empty(step / 3600.0)
        held = self._grids.get(scope)
        if held is None or held[0] != now or len(held[1].history) < min(count, MAX_SAMPLES):
            held = (now, resample(times, values, now=now, since=since, step_seconds=step))
            self._grids[scope] = held
        return narrow(held[1], count)


def _fill(conn: sqlite3.Connection, scope: str, points: Sequence[tuple[float, bool]]) -> int:
    """Write the change points of `points` the store does not hold for `scope` yet: the
    past before the daemon first watched, and what changed while it was down."""
    if not points:
        return 0
    held = {
        (round(float(at), 3), bool(available))
        for at, available in conn.execute(
            "SELECT at, available FROM spot_availability WHERE scope = ? AND at >= ?",
            (scope, points[0][0] - 1.0),
        )
    }
    fresh = [(at, a) for at, a in points if (round(at, 3), a) not in held]
    conn.executemany(
        "INSERT INTO spot_availability (scope, at, available, source) VALUES (?, ?, ?, ?)",
        [(scope, at, int(available), PAST_SOURCE) for at, available in fresh],
    )
    return len(fresh)
