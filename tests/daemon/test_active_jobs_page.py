"""The unfinished-jobs page (what `skyctl queue` asks) reads an index of unfinished jobs only:
pages are exact with finished jobs interleaved, and SQLite plans them on that index."""

from __future__ import annotations

from pathlib import Path

from skyd.model import TERMINAL_STATES, JobState
from skyd.store import jobs as job_store
from skyd.store import open_store

ACTIVE = [s for s in JobState if s not in TERMINAL_STATES]


def test_active_pages_skip_finished_jobs_and_page_by_keyset(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ids = []
    for i in range(30):
        job, _ = job_store.insert_job(
            store,
            name=f"j{i}",
            owner_uid=1000 + i % 2,
            owner_name="u",
            project=None,
            priority=0,
            spec_json="{}",
            base_dir="/",
            deadline=None,
            now=100.0,
        )
        ids.append(job.id)
    finished = set(ids[::3])
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE jobs SET state = 'SUCCEEDED' WHERE id = ?", [(i,) for i in finished]
        )
    active = [i for i in reversed(ids) if i not in finished]
    pages: list[int] = []
    cursor: int | None = None
    while True:
        page = job_store.list_jobs(store, states=ACTIVE, before_id=cursor, limit=7)
        pages.extend(j.id for j in page)
        if len(page) < 7:
            break
        cursor = page[-1].id
    assert pages == active
    mine = job_store.list_jobs(store, states=ACTIVE, owner_uid=1001, limit=100)
    assert [j.id for j in mine] == [i for i in active if (i - ids[0]) % 2 == 1]
    # a subset of states is still answered (without the partial index)
    pending = job_store.list_jobs(store, states=[JobState.PENDING], limit=100)
    assert [j.id for j in pending] == active


def test_the_page_query_is_planned_on_the_unfinished_jobs_index(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for owner in (None, 1000):
        where = f"{job_store.ACTIVE_CLAUSE}" + (" AND owner_uid = ?" if owner else "")
        params = (owner,) if owner else ()
        plan = store.conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE {where} AND id < 10"
            " ORDER BY id DESC LIMIT 100",
            params,
        ).fetchall()
        detail = " ".join(str(row[3]) for row in plan)
        assert "jobs_active" in detail, detail
        assert "TEMP B-TREE" not in detail, detail  # no sort of every unfinished job
    assert frozenset(ACTIVE) == job_store.ACTIVE_STATES
