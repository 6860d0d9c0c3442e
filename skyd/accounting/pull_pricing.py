"""What a checkpoint pull costs and what it protects, for the pull cadence
(skyd.runner.pull_cadence): the pull's egress at the rate it is charged at, its instance's
hourly price, and how often such an instance is lost unannounced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from skyd.accounting.records import ChargedInstance
from skyd.accounting.transfers import DAEMON_HOST, transfer_micros
from skyd.clock import Clock
from skyd.market.availability_grid import ZoneHistory
from skyd.optimizer.egress import EgressTable
from skyd.optimizer.single import MarketSignals
from skyd.runner.pull_cadence import PullPrice
from skyd.runner.pulls import CheckpointPull
from skyd.store import Store
from skyd.store import transfers as transfer_store

HISTORY_HOURS = 168.0  # the week of availability history a zone's loss rate is read from
# Up time a zone must have shown before its own rate of losses counts: a day holds few
# preemptions, and none in a few hours says little.
MIN_UP_HOURS = 24.0


class ZoneHistories(Protocol):
    """skyd.market.availability_log.AvailabilityLog: each offering's availability on a grid."""

    def zone_history(self, scope: str, since: float) -> ZoneHistory: ...


def losses_per_up_hour(history: ZoneHistory) -> float | None:
    """How often spot was taken back per hour it was up (None: under MIN_UP_HOURS seen)."""
    samples = history.history
    up_hours = int(np.count_nonzero(samples)) * history.step_hours
    if up_hours < MIN_UP_HOURS:
        return None
    ends = int(np.count_nonzero(samples[:-1] & ~samples[1:]))
    return ends / up_hours


class PullPricing:
    """`PullPricing(store, table, signals)(pull)`: the PullPrice of `pull`, or None when its
    instance is not recorded or its job has a deadline (the spot policy spends that job's
    slack on changeovers planned with the work lost at `checkpoint_sync_s`: waiting longer
    between pulls would lose more than it planned for). A spot instance is lost as often as
    the market's rate says (`signals`: the optimizer's view, by default the spot advisor's,
    raised by preemptions skyd saw itself) or, if more often, as its offering's own
    availability history over the last week shows (`histories`, the spot policy's)."""

    def __init__(
        self,
        *,
        store: Store,
        table: EgressTable,
        signals: Callable[[], MarketSignals],
        histories: ZoneHistories | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.table = table
        self.signals = signals
        self.histories = histories
        self.clock = clock

    def __call__(self, pull: CheckpointPull) -> PullPrice | None:
        conn = self.store.conn
        instance = transfer_store.charged_instance(conn, pull.provider, pull.instance_id)
        if instance is None:
            return None
        if instance.job_id is not None:
            row = conn.execute("SELECT deadline FROM jobs WHERE id = ?", (instance.job_id,))
            found = row.fetchone()
            if found is not None and found[0] is not None:
                return None
        rate = self.table.per_gb_micros(instance.cloud, instance.region, DAEMON_HOST, "")
        losses = self._losses_per_hour(instance) if instance.spot else 0.0
        return PullPrice(transfer_micros(pull.nbytes, rate), instance.hourly_price_micros, losses)

    def _losses_per_hour(self, spot: ChargedInstance) -> float:
        where = (spot.cloud, spot.region, spot.zone, spot.instance_type)
        losses = self.signals().preemption_rate_at(*where)
        if self.histories is not None and self.clock is not None:
            since = self.clock.now() - HISTORY_HOURS * 3600.0
            seen = losses_per_up_hour(self.histories.zone_history("/".join(where), since))
            losses = max(losses, seen or 0.0)
        return losses
