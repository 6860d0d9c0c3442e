"""A daemon's restart for provider tests: a store that recorded one instance, reconciled."""

from __future__ import annotations

from pathlib import Path

from skyd.clock import SystemClock
from skyd.model import Instance
from skyd.providers.base import Provider
from skyd.scheduler.reconcile import ReconcileReport, reconcile
from skyd.store import instances as instance_store
from skyd.store import open_store


async def reconcile_after_restart(
    provider: Provider,
    recorded: Instance,
    state_dir: Path,
    *,
    client_token: str,
    daemon_id: str,
    hourly_price_micros: int = 0,
) -> ReconcileReport:
    """Record `recorded` (attempt 1, no job) in the store at `state_dir`, then reconcile
    `provider` as daemon `daemon_id` coming back up would."""
    store = open_store(state_dir)
    try:
        with store.transaction() as conn:
            instance_store.insert_instance(
                conn,
                recorded,
                job_id=None,
                attempt=1,
                client_token=client_token,
                hourly_price_micros=hourly_price_micros,
                now=1.0,
            )
        return await reconcile(store, {provider.name: provider}, SystemClock(), daemon_id=daemon_id)
    finally:
        store.close()
