"""What a checkpoint pull costs and what it protects, for the pull cadence
(skyd.runner.pull_cadence): the pull's egress at the rate it is charged at, its instance's
hourly price, and how often such an instance is lost unannounced."""

from __future__ import annotations

from collections.abc import Callable

from skyd.accounting.transfers import DAEMON_HOST, transfer_micros
from skyd.optimizer.egress import EgressTable
from skyd.optimizer.single import MarketSignals
from skyd.runner.pull_cadence import PullPrice
from skyd.runner.pulls import CheckpointPull
from skyd.store import Store
from skyd.store import transfers as transfer_store


class PullPricing:
    """`PullPricing(store, table, signals)(pull)`: the PullPrice of `pull`, or None when its
    instance is not recorded or its job has a deadline (the spot policy spends that job's
    slack on changeovers planned with the work lost at `checkpoint_sync_s`: waiting longer
    between pulls would lose more than it planned for). `signals` gives the market's
    preemption rates now (the optimizer's view, raised by preemptions skyd saw itself)."""

    def __init__(
        self, *, store: Store, table: EgressTable, signals: Callable[[], MarketSignals]
    ) -> None:
        self.store = store
        self.table = table
        self.signals = signals

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
        losses = 0.0
        if instance.spot:
            losses = self.signals().preemption_rate_at(
                instance.cloud, instance.region, instance.zone, instance.instance_type
            )
        return PullPrice(transfer_micros(pull.nbytes, rate), instance.hourly_price_micros, losses)
