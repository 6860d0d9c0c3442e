"""The store: migrations, append-only events, atomic transitions, one writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from skyd.errors import IllegalTransitionError, StateLockedError
from skyd.model import JobState
from skyd.store import jobs as job_store
from skyd.store import open_store
from skyd.store.migrations import load_migrations


def _job(store: object) -> int:
    job, _ = job_store.insert_job(
        store,  # type: ignore[arg-type]
        name="a",
        owner_uid=1000,
        owner_name="alice",
        project=None,
        priority=0,
        spec_json="{}",
        base_dir="/",
        deadline=None,
        now=100.0,
    )
    return job.id


def test_migrations_are_recorded_and_reapplied_idempotently(tmp_path: Path) -> None:
    known = [name for name, _ in load_migrations()]
    assert known[0] == "0001_jobs_events_instances" and known == sorted(known)
    store = open_store(tmp_path)
    assert store.applied_migrations() == known
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    store.close()
    again = open_store(tmp_path)
    assert again.applied_migrations() == known
    again.close()


def test_a_database_from_a_newer_skyd_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.conn.execute("INSERT INTO schema_migrations VALUES ('9999_future', 0)")
    store.close()
    with pytest.raises(Exception, match="newer skyd"):
        open_store(tmp_path)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(StateLockedError, match="in use"):
        open_store(tmp_path)
    store.close()
    open_store(tmp_path).close()  # free again once the first closed


def test_submit_writes_job_and_event_together(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    job_id = _job(store)
    events = job_store.job_events(store, job_id)
    assert [(e.kind, e.state) for e in events] == [("submitted", "PENDING")]


def test_transition_records_event_and_reason(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    job_id = _job(store)
    job, event = job_store.transition(
        store, job_id, JobState.PROVISIONING, now=101.0, reason="placed", attempt=1
    )
    assert job.state == JobState.PROVISIONING and job.attempt == 1 and job.reason == "placed"
    assert event.state == "PROVISIONING" and event.at == 101.0


def test_illegal_transition_changes_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    job_id = _job(store)
    with pytest.raises(IllegalTransitionError, match="PENDING to SUCCEEDED"):
        job_store.transition(store, job_id, JobState.SUCCEEDED, now=101.0, reason="x")
    assert job_store.get_job(store, job_id).state == JobState.PENDING
    assert len(job_store.job_events(store, job_id)) == 1


def test_failure_inside_a_transition_rolls_back_state_and_event(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    job_id = _job(store)

    def explode(_conn: sqlite3.Connection) -> None:
        raise RuntimeError("crash between state change and instance record")

    with pytest.raises(RuntimeError):
        job_store.transition(
            store, job_id, JobState.PROVISIONING, now=101.0, reason="x", also=explode
        )
    assert job_store.get_job(store, job_id).state == JobState.PENDING
    assert len(job_store.job_events(store, job_id)) == 1


def test_events_are_append_only(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _job(store)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE events SET reason = 'rewritten'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM events")


def test_list_jobs_pages_newest_first(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ids = [_job(store) for _ in range(5)]
    first = job_store.list_jobs(store, limit=2)
    assert [j.id for j in first] == ids[::-1][:2]
    second = job_store.list_jobs(store, limit=2, before_id=first[-1].id)
    assert [j.id for j in second] == ids[::-1][2:4]
