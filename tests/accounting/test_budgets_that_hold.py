"""Budgets that hold (#18): unknown runtimes are not free, user and lab budgets bind, pools are
scoped, split ledger rows count time once, crossings are announced once, bad input changes
nothing."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest

from skyd.accounting import AccountingSettings
from skyd.accounting.alerts import AlertHook
from skyd.accounting.errors import AccountingInputError
from skyd.clock import VirtualClock
from skyd.identity import Caller
from skyd.spec import TaskSpec, parse_task
from tests.accounting.accounting_books import (
    ADMIN,
    START,
    accountant,
    add_job,
    launch,
    new_store,
    run_job,
)

ALICE = Caller(uid=1000, is_admin=False)
BOB = Caller(uid=1001, is_admin=False)
DOLLAR = 1_000_000


def spec(project: str | None = None, hours: str | None = None) -> TaskSpec:
    text = "run: train\n"
    if project:
        text += f"project: {project}\n"
    if hours:
        text += f"estimated_runtime: {hours}\n"
    return parse_task(text, source="task.yaml", base_dir=Path("/tmp"))


def test_a_job_without_a_runtime_estimate_is_counted_at_the_assumed_runtime(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START), settings=AccountingSettings())
    books.admin.set_project(ADMIN, "p1", {"monthly_budget": 1})
    # $2/h for the assumed 1 h passes a $1 budget: held, not let through as free
    held = books.check_submit(spec(project="p1"), ALICE, 2 * DOLLAR)
    assert held.hold and "expected to cost $2.00" in held.message
    assert not books.check_submit(spec(project="p1"), ALICE, DOLLAR // 2).hold
    longer = accountant(
        store, VirtualClock(START), settings=AccountingSettings(assumed_runtime_hours=4)
    )
    assert longer.check_submit(spec(project="p1"), ALICE, DOLLAR // 2).hold
    # three such jobs in one batch: each counts against the next
    jobs = [add_job(store, project="p1", spec={"run": "x", "project": "p1"}) for _ in range(3)]
    decisions = books.check_jobs({job: DOLLAR // 2 for job in jobs})
    assert [decisions[j].hold for j in jobs] == [False, False, True]


def test_user_and_lab_budgets_bind_like_project_budgets(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.ensure_default_project()
    books.admin.set_user_limit(ADMIN, "1000", {"monthly_budget": 5})
    job = add_job(store, owner_uid=1000, project="default")
    run_job(store, job, gpus=0, hourly_micros=2 * DOLLAR)
    books.accrue(START + 2 * 3600)  # alice: $4 of $5
    assert books.running_over_budget() == [(job, "warn")]
    assert books.check_submit(spec(hours="1h"), ALICE, 2 * DOLLAR).hold
    assert not books.check_submit(spec(hours="1h"), BOB, 2 * DOLLAR).hold
    books.accrue(START + 2.5 * 3600)  # $5: spent
    assert books.running_over_budget() == [(job, "hold")]
    books.admin.set_user_limit(ADMIN, "1000", {"monthly_budget": None})
    assert books.running_over_budget() == []
    books.admin.set_lab_budget(ADMIN, {"monthly_budget": 5})
    assert books.running_over_budget() == [(job, "hold")]
    decision = books.check_submit(spec(hours="1h"), BOB, DOLLAR)
    assert decision.hold and "the lab's monthly budget" in decision.message
    view = books.budgets()
    assert [b["scope"] for b in view["budgets"]] == ["lab"]
    assert view["budgets"][0]["spent"] == pytest.approx(5.0)


def test_a_pool_pays_only_for_the_projects_and_users_it_is_scoped_to(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.set_project(ADMIN, "nlp", {})
    books.admin.set_project(ADMIN, "vision", {})
    books.admin.add_pool(
        ADMIN,
        {"name": "nlp-grant", "cloud": "aws", "amount": 100, "expires": START + 86_400 * 30,
         "projects": ["nlp"]},
    )  # fmt: skip
    books.admin.add_pool(
        ADMIN,
        {"name": "bob-grant", "cloud": "aws", "amount": 100, "expires": START + 86_400 * 30,
         "users": ["1001"]},
    )  # fmt: skip
    nlp = add_job(store, owner_uid=1000, project="nlp")
    vision = add_job(store, owner_uid=1000, project="vision")
    bobs = add_job(store, owner_uid=1001, project="vision")
    launch(store, "i-nlp", job_id=nlp, hourly_micros=DOLLAR, at=START)
    launch(store, "i-vision", job_id=vision, hourly_micros=DOLLAR, at=START)
    launch(store, "i-bob", job_id=bobs, hourly_micros=DOLLAR, at=START)
    books.accrue(START + 3600)
    payers = dict(
        store.conn.execute(
            "SELECT w.instance_id, COALESCE(c.name, 'cash') FROM accrual_watermarks AS w"
            " LEFT JOIN credit_pools AS c ON c.id = w.open_pool_id"
        ).fetchall()
    )
    assert payers == {"i-nlp": "nlp-grant", "i-vision": "cash", "i-bob": "bob-grant"}
    with pytest.raises(AccountingInputError, match="projects: no project 'nlpp'"):
        books.admin.set_pool(ADMIN, "nlp-grant", {"projects": ["nlpp"]})


def test_rows_split_between_payers_count_each_millisecond_once(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    # $0.50 of credit for an instance at $1/h: the pool runs dry half-way through the hour
    books.admin.add_pool(
        ADMIN, {"name": "small", "cloud": "aws", "amount": "0.5", "expires": START + 86_400}
    )
    job = add_job(store)
    launch(store, "i-1", job_id=job, hourly_micros=DOLLAR, at=START)
    books.accrue(START + 3600)
    books.accrue(START + 7200)
    rows = store.conn.execute(
        "SELECT start_ms, end_ms, pool_id, amount_micros FROM ledger ORDER BY start_ms, seq"
    ).fetchall()
    assert rows, "the split piece is posted at once"
    spans = [(r[0], r[1]) for r in rows]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end == start, f"rows overlap or leave a gap: {spans}"
    assert sum(r[3] for r in rows if r[2] is not None) == DOLLAR // 2


def test_each_warning_line_is_announced_once_even_across_restarts(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    clock = VirtualClock(START)
    books = accountant(store, clock)
    books.admin.set_project(ADMIN, "nlp", {"monthly_budget": 10})
    job = add_job(store, project="nlp")
    run_job(store, job, gpus=0, hourly_micros=4 * DOLLAR)
    books.accrue(START + 1.0 * 3600)  # $4: nothing
    assert books.announce_alerts() == []
    books.accrue(START + 2.0 * 3600)  # $8: 80 %
    [alert] = books.announce_alerts()
    assert alert.permille == 800 and "80 %" in alert.message()
    assert books.announce_alerts() == []
    restarted = accountant(store, clock)
    assert restarted.announce_alerts() == []
    restarted.accrue(START + 2.5 * 3600)  # $10: 95 % and 100 % in one pass → one message
    [alert] = restarted.announce_alerts()
    assert alert.permille == 1000 and "is spent" in alert.message()
    events = store.conn.execute(
        "SELECT reason, data_json FROM events WHERE kind = 'budget' ORDER BY seq"
    ).fetchall()
    assert len(events) == 2
    assert json.loads(events[1][1])["scope"] == "project:nlp"


async def test_the_hook_is_retried_until_it_takes_the_alert(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    script = tmp_path / "hook.py"
    script.write_text(
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(seen)!r})\n"
        "n = len(p.read_text().splitlines()) if p.exists() else 0\n"
        "p.open('a').write(sys.stdin.read().replace('\\n', ' ') + '\\n')\n"
        "sys.exit(0 if n >= 1 else 1)\n"  # fails the first time
    )
    hook = AlertHook(f"{sys.executable} {script}", attempts=3, backoff=(0.0,))
    assert await hook.deliver({"message": "nlp at 80 %"})
    lines = seen.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1]) == {"message": "nlp at 80 %"}
    never = AlertHook(f"{sys.executable} -c 'import sys; sys.exit(3)'", attempts=2, backoff=(0.0,))
    assert not await never.deliver({"message": "x"})
    assert never.failed == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: b.admin.set_project(ADMIN, "p", {"monthly_budget": -1}), "monthly_budget"),
        (lambda b: b.admin.set_project(ADMIN, "p", {"monthly_budget": "NaN"}), "monthly_budget"),
        (lambda b: b.admin.set_project(ADMIN, "p", {"monthly_budget": 1e10}), "monthly_budget"),
        (lambda b: b.admin.set_user_limit(ADMIN, "1000", {"max_hourly": 1e308}), "max_hourly"),
        (lambda b: b.admin.set_user_limit(ADMIN, "nosuchuser-xyz", {"max_gpus": 1}), "user"),
        (lambda b: b.admin.set_lab_budget(ADMIN, {"monthly_budget": "-5"}), "monthly_budget"),
        (
            lambda b: b.admin.add_pool(
                ADMIN, {"name": "x", "cloud": "aws", "amount": 1e20, "expires": START + 9}
            ),
            "amount",
        ),
        (
            lambda b: b.admin.add_pool(
                ADMIN, {"name": "x", "cloud": "aws", "amount": 5, "expires": 1e300}
            ),
            "expires",
        ),
        (
            lambda b: b.admin.add_pool(
                ADMIN, {"name": "x", "cloud": "aws", "amount": 5, "expires": START - 1}
            ),
            "expires",
        ),
        (
            lambda b: b.admin.add_pool(
                ADMIN,
                {"name": "x", "cloud": "aws", "amount": 5, "expires": START + 9, "users": ["?"]},
            ),
            "users",
        ),
    ],
)
def test_bad_budgets_limits_and_amounts_are_refused_naming_the_field(
    tmp_path: Path, call: object, field: str
) -> None:
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START))
    before = store.conn.execute("SELECT COUNT(*) FROM accounting_changes").fetchone()[0]
    with pytest.raises(AccountingInputError) as info:
        call(books)  # type: ignore[operator]
    assert info.value.field == field
    after = store.conn.execute("SELECT COUNT(*) FROM accounting_changes").fetchone()[0]
    assert after == before, "a refused request changed nothing"


def test_an_instance_launched_on_a_half_millisecond_is_charged_exactly_its_life(
    tmp_path: Path,
) -> None:
    # SQLite's ROUND and Python's round disagree on halves; the start and the end of a
    # charge must be rounded by one rule, or the ledger is 1 ms off the instance's life
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START))
    launched = START + 0.0125  # 12.5 ms: half-even rounds down, half-away-from-zero up
    ended = START + 10.0
    job = add_job(store)
    launch(store, "i-half", job_id=job, hourly_micros=DOLLAR, at=launched)
    from skyd.store import instances as instance_store

    with store.transaction() as conn:
        instance_store.set_instance_state(conn, "sim", "i-half", "TERMINATED", now=ended)
    books.accrue(START + 60)
    charged = store.conn.execute(
        "SELECT SUM(end_ms - start_ms) FROM ledger WHERE instance_id = 'i-half'"
    ).fetchone()[0]
    assert charged == round(ended * 1000) - round(launched * 1000)


def test_without_budgets_or_limits_a_submit_does_not_read_the_books(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = new_store(tmp_path)
    books = accountant(store, VirtualClock(START))
    books.ensure_default_project()
    read: list[bool] = []
    original = books.enforcer.standing

    def counted(conn: object = None) -> object:
        read.append(True)
        return original()

    monkeypatch.setattr(books.enforcer, "standing", counted)
    assert not books.check_submit(spec(hours="1h"), ALICE, 50 * DOLLAR).hold
    assert read == []  # nothing can hold it: the books are not read
    books.admin.set_project(ADMIN, "p1", {"monthly_budget": 1})
    assert books.check_submit(spec(project="p1", hours="1h"), ALICE, 2 * DOLLAR).hold
    assert read == [True]
