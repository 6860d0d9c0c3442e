"""The scheduler's one writer: job transitions, job events and instance rows, then announced.

Every step decides; only this module changes the store and publishes what changed, so a
reader looking for "who moves a job" finds one place. `lifecycle.check_transition`, run by
`store.jobs.transition` under the transaction, stays the authority on what is legal.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skyd.clock import Clock
from skyd.events import EventBus
from skyd.model import Instance, JobState
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.records import EventRecord, JobRecord

Also = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True, slots=True)
class Transition:
    """One job's change of state: where to, why, and what else changes in the same commit."""

    job_id: int
    target: JobState
    reason: str
    at: float
    kind: str = "state"
    data: dict[str, Any] | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    also: Also | None = None  # runs inside the transaction (e.g. the launch's instance rows)


def login_data(inst: Instance) -> dict[str, Any]:
    """What the launch said about reaching the instance (some clouds only say it then:
    Azure's addresses live on its NIC and public IP, not on the VM a later list returns)."""
    data = {"public_ip": inst.public_ip, "private_ip": inst.private_ip, "ssh_user": inst.ssh_user}
    return {k: v for k, v in data.items() if v}


class Journal:
    """Writes what the scheduler decided, one transaction each, and announces it on the bus."""

    def __init__(self, store: Store, bus: EventBus, clock: Clock) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self._waiting: dict[int, str] = {}  # job → the waiting reason last recorded

    def commit(self, change: Transition) -> JobRecord:
        """Change a job's state (with its event, atomically) and announce the event."""
        job, event = job_store.transition(
            self.store,
            change.job_id,
            change.target,
            now=change.at,
            reason=change.reason,
            kind=change.kind,
            data=change.data,
            also=change.also,
            **change.changes,
        )
        self.publish(event)
        return job

    def move(
        self,
        job_id: int,
        target: JobState,
        *,
        reason: str,
        now: float | None = None,
        kind: str = "state",
        data: dict[str, Any] | None = None,
        also: Also | None = None,
        **changes: Any,
    ) -> JobRecord:
        at = self.clock.now() if now is None else now
        return self.commit(Transition(job_id, target, reason, at, kind, data, changes, also))

    def publish(self, event: EventRecord) -> None:
        self.bus.publish(event)

    def cancel_requested(self, job_ids: Sequence[int], by: str) -> None:
        """Store that the unfinished ones of `job_ids` are to be cancelled, then announce it
        (the announcement also wakes the scheduler, whose next pass starts the kill)."""
        for event in job_store.request_cancel(self.store, job_ids, by=by, now=self.clock.now()):
            self.publish(event)

    def note_waiting(self, job: JobRecord, reason: str) -> None:
        """Record why a job waits, once per distinct reason (a waiting queue costs no writes)."""
        if self._waiting.get(job.id) == reason:
            return
        self._waiting[job.id] = reason
        event = job_store.record_event(
            self.store, job.id, now=self.clock.now(), kind="waiting", reason=reason
        )
        self.publish(event)

    def note(self, job_id: int, kind: str, reason: str, data: dict[str, Any] | None = None) -> None:
        """Record (and announce) something that happened to a job without changing its state."""
        self.publish(
            job_store.record_event(
                self.store, job_id, now=self.clock.now(), kind=kind, reason=reason, data=data
            )
        )

    def placed(self, job_id: int) -> None:
        """The job stopped waiting: a later wait is news again."""
        self._waiting.pop(job_id, None)

    def instance_rows(
        self, instances: Sequence[Instance], *, job: JobRecord, token: str, hourly_micros: int
    ) -> Also:
        """The rows a launch made, to write inside the transaction that records it."""

        def record(conn: sqlite3.Connection) -> None:
            for inst in instances:
                instance_store.insert_instance(
                    conn,
                    inst,
                    job_id=job.id,
                    attempt=job.attempt,
                    client_token=token,
                    hourly_price_micros=hourly_micros,
                    now=self.clock.now(),
                    data=login_data(inst),
                )

        return record

    def launched(self, job: JobRecord, rows: Also, reason: str, data: dict[str, Any]) -> None:
        """Instances that are still booting: their rows and a `launched` event, no new state."""
        with self.store.transaction() as conn:
            rows(conn)
            event = job_store.append_event(
                conn, job_id=job.id, at=self.clock.now(), kind="launched", reason=reason, data=data
            )
        self.publish(event)

    def pin_host_key(
        self, provider: str, instance_id: str, host_key: str, address: str | None = None
    ) -> None:
        """The SSH host key an instance presented the first time skyd reached it: from now on
        only that key is accepted for it. `address`: where it was reached (its endpoints)."""
        with self.store.transaction() as conn:
            instance_store.set_instance_data(conn, provider, instance_id, "host_key", host_key)
            if address:
                instance_store.set_instance_data(conn, provider, instance_id, "address", address)

    def giving_back(
        self, ends: Sequence[tuple[str, str, str]], then: Transition | None = None
    ) -> JobRecord | None:
        """(provider, instance id, final state) for instances about to be terminated, marked
        TERMINATING before the call, in the same transaction as the job's outcome `then`: a
        daemon killed between the call and its answer finds, after a restart, the job's real
        outcome and a termination to finish, never a VM that vanished under a running job."""

        def mark(conn: sqlite3.Connection) -> None:
            for provider, instance_id, final in ends:
                instance_store.mark_terminating(conn, provider, instance_id, final)

        if then is None:
            with self.store.transaction() as conn:
                mark(conn)
            return None
        also = then.also

        def both(conn: sqlite3.Connection) -> None:
            if also is not None:
                also(conn)
            mark(conn)

        return self.commit(dataclasses.replace(then, also=both))

    def instances_ended(self, ended: Sequence[tuple[str, str, str]], now: float) -> None:
        """(provider, instance id, final state) for instances given back, in one transaction."""
        with self.store.transaction() as conn:
            for provider, instance_id, final in ended:
                instance_store.set_instance_state(conn, provider, instance_id, final, now=now)
