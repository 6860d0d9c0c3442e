"""Human rendering: tables, durations, money, the queue table and the show page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

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
        "A100  1.5    -",
        "V100  -      yes",
    ]


def test_document_text_shows_scalars_then_each_record_list() -> None:
    payload = {"total": 3.5, "by": "project", "rows": [{"project": "vision", "cost": 3.5}]}
    assert document_text(payload) == (
        "total  3.5\nby     project\n\nRows\nPROJECT  COST\nvision   3.5"
    )
    assert document_text([]) == "(none)"
    assert document_text({}) == "(empty)"


def _job(**fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": 7,
        "name": "train",
        "state": "RUNNING",
        "owner": "alice",
        "owner_uid": 1000,
        "project": None,
        "priority": 0,
        "created_at": T0,
        "updated_at": T0,
        "started_at": None,
        "ended_at": None,
        "exit_code": None,
        "reason": None,
        "placement": None,
        "deadline": None,
        "preemptions": 0,
        "restarts": 0,
        "cost": 0.0,
    }
    job.update(fields)
    return job


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
        "ID  NAME   USER   STATE    PLACEMENT                                 AGE/DURATION",
        "12  eval   bob    PENDING  -                                         2m05s",
        "7   train  alice  RUNNING  aws/us-east-1/us-east-1a p3.2xlarge spot  2m05s",
    ]


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
