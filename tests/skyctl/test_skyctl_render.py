"""Human rendering: tables, durations, money, the queue table and the show page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skyctl.follow import describe
from skyctl.job_view import elapsed, job_page, placement_summary, queue_table
from skyctl.render import (
    document_text,
    format_duration,
    format_money,
    format_scalar,
    format_table,
    format_timestamp,
    records_table,
)
from skyd.testing.canned_daemon import fake_job

T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-5, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (245, "4m05s"),
        (3600, "1h00m"),
        (3 * 3600 + 7 * 60 + 59, "3h07m"),
        (2 * 86400 + 4 * 3600 + 1, "2d04h"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("dollars", "text"),
    [
        (None, "-"),
        (0, "$0.00"),
        (0.918, "$0.92"),
        (1234.5, "$1,234.50"),
        (0.00421, "$0.00421"),
        (-2.5, "-$2.50"),
    ],
)
def test_format_money(dollars: float | None, text: str) -> None:
    assert format_money(dollars) == text


def test_format_timestamp_in_a_given_zone() -> None:
    assert format_timestamp(T0, dt.UTC) == "2026-09-21 14:13:20"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_timestamp(T0, plus_two) == "2026-09-21 16:13:20"
    assert format_timestamp(None) == "-"


def test_table_aligns_columns_and_has_no_trailing_spaces() -> None:
    text = format_table(("ID", "NAME", "STATE"), [["7", "train", "RUNNING"], ["12", "x", ""]])
    assert text.split("\n") == [
        "ID  NAME   STATE",
        "7   train  RUNNING",
        "12  x",
    ]


def test_table_cuts_long_cells_and_flattens_newlines() -> None:
    text = format_table(("A", "B"), [["abcdefghij", "two\nlines"]], max_widths={0: 5})
    assert text.split("\n")[1] == "abcd…  two lines"


def test_format_scalar_handles_nested_json() -> None:
    assert format_scalar({"a": 1, "b": None}) == "a=1, b=-"
    assert format_scalar([True, 0.1 + 0.2]) == "yes, 0.3"


def test_records_table_uses_the_union_of_keys_in_first_seen_order() -> None:
    text = records_table([{"gpu": "A100", "price": 1.5}, {"gpu": "V100", "spot": True}])
    assert text.split("\n") == [
        "GPU   PRICE  SPOT",
        "A100  $1.50  -",
        "V100  -      yes",
    ]


def test_document_text_shows_scalars_then_each_record_list() -> None:
    payload = {"total": 3.5, "by": "project", "rows": [{"project": "vision", "cost": 3.5}]}
    assert document_text(payload) == (
        "total  $3.50\nby     project\n\nRows\nPROJECT  COST\nvision   $3.50"
    )


def test_document_text_is_for_people_dollars_and_local_times_no_micros() -> None:
    payload = {
        "since": T0 - 3 * 3600,
        "total": 1234.5,
        "total_micros": 1_234_500_000,
        "burn_per_hour": 0.000015,
        "expires_at": "2026-09-22T14:13:20+00:00",
    }
    text = document_text(payload, now=T0)
    assert "micros" not in text.lower() and "e+09" not in text and "e-05" not in text
    assert "(3h00m ago)" in text and "(in 1d00h)" in text
    assert "$1,234.50" in text and "$0.000015/h" in text
    assert document_text([]) == "(none)"
    assert document_text({}) == "(empty)"


def _job(**fields: Any) -> dict[str, Any]:
    return fake_job(7, at=T0, **{"name": "train", "state": "RUNNING", "owner": "alice", **fields})


PLACEMENT = {
    "cloud": "aws",
    "region": "us-east-1",
    "zone": "us-east-1a",
    "instance_type": "p3.2xlarge",
    "accelerator_name": "V100",
    "accelerator_count": 1,
    "spot": True,
    "hourly_price": 0.918,
    "expected_cost": 3.4,
    "why": "cheapest spot offer that meets the deadline",
}


def test_placement_summary() -> None:
    assert placement_summary(None) == "-"
    assert placement_summary(PLACEMENT) == "aws/us-east-1/us-east-1a p3.2xlarge spot"
    local = {"cloud": "local", "region": "", "zone": "", "instance_type": "", "spot": False}
    assert placement_summary(local) == "local"


def test_elapsed_is_age_before_start_and_run_time_after() -> None:
    assert elapsed(_job(), T0 + 90) == "1m30s"
    assert elapsed(_job(started_at=T0 + 60), T0 + 90) == "30s"
    assert elapsed(_job(started_at=T0 + 60, ended_at=T0 + 3660), T0 + 99999) == "1h00m"
    assert elapsed(_job(state="CANCELLED", ended_at=T0 + 5), T0 + 99999) == "5s"


def test_queue_table() -> None:
    jobs = [
        _job(id=12, name="eval", state="PENDING", owner="bob"),
        _job(started_at=T0, placement=PLACEMENT),
    ]
    assert queue_table(jobs, T0 + 125).split("\n") == [
        "ID  NAME   USER   STATE    PLACEMENT                                 SUBMITTED  RUN TIME",
        "12  eval   bob    PENDING  -                                         2m05s ago  -",
        "7   train  alice  RUNNING  aws/us-east-1/us-east-1a p3.2xlarge spot  2m05s ago  2m05s",
    ]


def test_queue_table_fits_the_width_by_cutting_the_widest_column() -> None:
    jobs = [_job(name="a-rather-long-job-name-for-a-sweep", started_at=T0, placement=PLACEMENT)]
    for width in (70, 100):
        lines = queue_table(jobs, T0 + 5, width=width).split("\n")
        assert max(len(line) for line in lines) <= width
        assert lines[1].split()[-3:] == ["5s", "ago", "5s"]  # short columns are never cut
    wide = queue_table(jobs, T0 + 5, width=200).split("\n")
    assert "a-rather-long-job-name-for-a-sweep" in wide[1] and "…" not in wide[1]


def test_a_recovered_job_shows_every_attempt_and_their_summed_run_time() -> None:
    def placed(at: float, attempt: int, zone: str) -> dict[str, Any]:
        where = {**PLACEMENT, "zone": zone}
        data = {"attempt": attempt, "placement": where}
        return {"at": at, "kind": "state", "state": "PROVISIONING", "data": data}

    def running(at: float) -> dict[str, Any]:
        return {"at": at, "kind": "state", "state": "RUNNING"}

    def preempted(at: float) -> dict[str, Any]:
        return {"at": at, "kind": "preempted", "state": "RECOVERING"}

    events = [
        {"at": T0, "kind": "submitted", "state": "PENDING"},
        placed(T0 + 1, 1, "us-east-1a"),
        running(T0 + 2),
        preempted(T0 + 9),  # ran 7 s
        placed(T0 + 9, 2, "us-east-1b"),
        running(T0 + 10),
        preempted(T0 + 12),  # ran 2 s
        placed(T0 + 15, 3, "us-east-1c"),
        running(T0 + 16),
        {"at": T0 + 26, "kind": "state", "state": "SUCCEEDED"},  # ran 10 s
    ]
    job = _job(
        state="SUCCEEDED",
        started_at=T0 + 16,
        ended_at=T0 + 26,
        preemptions=2,
        placement=PLACEMENT,
        events=events,
    )
    page = job_page(job, T0 + 100, dt.UTC)
    assert "  run time     19s over 3 attempts\n" in page
    attempts = page.split("Attempts\n")[1].split("\n\n")[0].split("\n")
    assert [line.split()[0] for line in attempts] == ["#", "1", "2", "3"]
    assert [line.split()[-2:] for line in attempts[1:]] == [
        ["7s", "preempted"],
        ["2s", "preempted"],
        ["10s", "succeeded"],
    ]
    assert "us-east-1b" in attempts[2]
    queue = queue_table([job], T0 + 100)
    assert "10s*" in queue and "sums the run time of every attempt" in queue


def test_job_page_shows_facts_placement_and_events() -> None:
    job = _job(
        started_at=T0 + 10,
        placement=PLACEMENT,
        cost=0.05,
        events=[
            {"seq": 1, "at": T0, "kind": "submitted", "state": "PENDING", "reason": "by alice"},
            {"seq": 2, "at": T0 + 10, "kind": "state", "state": "RUNNING", "reason": ""},
        ],
    )
    page = job_page(job, T0 + 70, dt.UTC)
    assert page.startswith("Job 7: train\n  state        RUNNING\n")
    assert "  owner        alice (uid 1000)\n" in page
    assert "  submitted    2026-09-21 14:13:20 (1m10s ago)\n" in page
    assert "  run time     1m00s\n" in page
    assert "  cost         $0.05\n" in page
    assert "  what   p3.2xlarge V100:1 spot\n" in page
    assert "  price  $0.92/h, about $3.40 in total\n" in page
    assert "  why    cheapest spot offer that meets the deadline\n" in page
    assert page.endswith(
        "Events\n"
        "  TIME                 KIND       STATE    REASON\n"
        "  2026-09-21 14:13:20  submitted  PENDING  by alice\n"
        "  2026-09-21 14:13:30  state      RUNNING"
    )


def test_job_page_of_an_unplaced_job_without_events() -> None:
    page = job_page(_job(state="PENDING", deadline=T0 + 7200), T0 + 60, dt.UTC)
    assert "Placement: not placed yet" in page
    assert "Events: none" in page
    assert "  deadline     2026-09-21 16:13:20 (in 1h59m)\n" in page
    assert "run time" not in page


def test_price_history_shows_local_times_and_dollars() -> None:
    from skyctl.market_commands import history_text

    payload = {
        "offering": {**PLACEMENT, "price": 3.06, "spot_price": 0.918, "vcpus": 8.0},
        "catalog_spot_price": 0.9,
        "history": [
            {"at": T0 - 3 * 3600, "spot_price": 0.918, "available": True, "source": "trace"},
            {"at": T0 - 60, "preemptions_per_hour": 0.5, "source": "skyd-preemption"},
        ],
    }
    text = history_text(payload, T0)
    assert "e+09" not in text
    assert "on-demand $3.06/h, spot $0.92/h now" in text.splitlines()[0]
    assert "3h00m ago" in text and "1m00s ago" in text and "0.5" in text


def test_job_page_says_the_planners_latest_word_on_moving_a_running_job() -> None:
    changeover = "changeover 0.51 h (p90 of 1 launch; configured 0.20 h)"
    declined = {
        "seq": 3,
        "at": T0 + 20,
        "kind": "migration_declined",
        "state": None,
        "reason": "staying on ...",
        "data": {"to": "sim/r1/sim-b/p3.2xlarge/spot", "move_cost": 0.51, "changeover": changeover},
    }
    events = [
        {"seq": 1, "at": T0, "kind": "submitted", "state": "PENDING", "reason": ""},
        {"seq": 2, "at": T0 + 10, "kind": "state", "state": "RUNNING", "reason": ""},
        declined,
    ]
    job = _job(started_at=T0 + 10, placement=PLACEMENT, events=events)
    page = job_page(job, T0 + 70, dt.UTC)
    assert (
        "  move   declined: to sim/r1/sim-b/p3.2xlarge/spot, the move costs $0.51\n"
        f"         {changeover}\n"
    ) in page, page
    # an ended job, or a word said before the job's current run started, is not shown
    assert "  move " not in job_page({**job, "state": "SUCCEEDED"}, T0 + 70, dt.UTC)
    restarted = {**job, "started_at": T0 + 30}
    assert "  move " not in job_page(restarted, T0 + 70, dt.UTC)


def test_a_followed_job_says_its_cancel_was_asked_before_it_ends() -> None:
    event = {"kind": "cancel_requested", "state": None, "reason": "cancel requested by ana;"
             " stopping the job", "data": {"by": "ana"}}  # fmt: skip
    assert describe(event) == ("⚠", "Cancel requested by ana; stopping the job")
