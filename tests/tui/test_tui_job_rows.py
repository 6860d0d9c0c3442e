"""The jobs table's model without a screen: cells, filtering, sorting and applying events."""

from __future__ import annotations

from typing import Any

import pytest

from skyctl.job_view import state_text
from skyd.testing.canned_daemon import fake_job, fake_placement
from tui import job_rows
from tui.job_rows import JobFilter

T0 = 1_000_000.0


def running_job(**fields: Any) -> dict[str, Any]:
    placement = fake_placement("aws", "us-east-1", "g5.xlarge", spot=True, hourly_price=3.6)
    return fake_job(7, at=T0, state="RUNNING", started_at=T0, placement=placement, **fields)


def plain(cells: dict[str, Any]) -> dict[str, str]:
    return {key: text.plain.strip() for key, text in cells.items()}


def test_a_running_job_row_shows_runtime_and_an_estimated_cost_until_the_ledger_catches_up() -> (
    None
):
    row = plain(job_rows.cells(running_job(cost=0.01), T0 + 600, {}))
    assert row["runtime"] == "10m00s"
    assert row["cost"] == "~$0.60"  # 10 minutes at $3.60/h beats the ledger's $0.01
    assert row["market"] == "spot"
    assert row["placement"].startswith("aws/us-east-1")
    ledger_ahead = plain(job_rows.cells(running_job(cost=5.0), T0 + 600, {}))
    assert ledger_ahead["cost"] == "$5.00"


def test_slack_counts_down_to_the_deadline_and_goes_negative_and_red_when_late() -> None:
    job = running_job(deadline=T0 + 3600)
    colours = {"text-error": "#ff0000"}
    assert plain(job_rows.cells(job, T0 + 600, colours))["slack"] == "50m00s"
    late = job_rows.cells(job, T0 + 3900, colours)["slack"]
    assert late.plain.strip() == "-5m00s"
    assert any(span.style == "#ff0000" for span in late.spans)
    finished = {**job, "state": "SUCCEEDED", "ended_at": T0 + 1800}
    assert plain(job_rows.cells(finished, T0 + 99_999, colours))["slack"] == "30m00s"


def test_names_are_shown_as_written_never_as_markup() -> None:
    job = fake_job(1, at=T0, name="eval[bold]x[/bold]")
    assert job_rows.cells(job, T0, {})["name"].plain.strip() == "eval[bold]x[/bold]"


def test_state_colours_come_from_the_theme_variables_given() -> None:
    colours = {"text-success": "#00aa00", "text-warning": "#aa8800"}
    running = job_rows.cells(running_job(), T0, colours)["state"]
    assert [s.style for s in running.spans] == ["#00aa00"]
    pending = job_rows.cells(fake_job(2, at=T0), T0, colours)["state"]
    assert [s.style for s in pending.spans] == ["#aa8800"]


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("train", True),
        ("state:running", True),
        ("state:pending", False),
        ("owner:ana cloud:aws", True),
        ("owner:bo", False),
        ("market:spot", True),
        ("TRAIN state:RUN", True),
        ("nomatch", False),
    ],
)
def test_filter_terms_must_all_match(text: str, matches: bool) -> None:
    job = running_job(name="train-resnet")
    assert JobFilter.parse(text).matches(job) is matches


def test_sorting_by_state_puts_live_jobs_first_and_missing_values_last() -> None:
    jobs = [
        fake_job(1, at=T0, state="SUCCEEDED"),
        fake_job(2, at=T0, state="PENDING"),
        running_job(),
        fake_job(3, at=T0, state="RUNNING", deadline=T0 + 60),
    ]
    by_state = sorted(jobs, key=job_rows.sort_key("state", T0))
    assert [j["state"] for j in by_state] == ["RUNNING", "RUNNING", "PENDING", "SUCCEEDED"]
    by_slack = sorted(jobs, key=job_rows.sort_key("slack", T0))
    assert by_slack[0]["id"] == 3  # the only deadline comes first; the rest have none
    by_id = sorted(jobs, key=job_rows.sort_key("id", T0))
    assert [j["id"] for j in by_id] == [7, 3, 2, 1]  # newest first


def test_an_event_changes_the_state_once_and_an_older_event_changes_nothing() -> None:
    job = fake_job(5, at=T0)
    running = job_rows.apply_event(job, {"at": T0 + 5, "state": "RUNNING", "kind": "state"})
    assert running is not None
    assert running["state"] == "RUNNING" and running["started_at"] == T0 + 5
    assert job["state"] == "PENDING"  # the input is not changed in place
    assert job_rows.apply_event(running, {"at": T0 + 1, "state": "PROVISIONING"}) is None
    done = job_rows.apply_event(running, {"at": T0 + 9, "state": "FAILED"})
    assert done is not None and done["ended_at"] == T0 + 9


def test_only_live_jobs_with_a_clock_driven_cell_tick() -> None:
    assert job_rows.needs_ticking(running_job())
    assert not job_rows.needs_ticking(fake_job(1, at=T0))  # pending, no deadline
    assert job_rows.needs_ticking(fake_job(1, at=T0, deadline=T0 + 5))
    assert not job_rows.needs_ticking({**running_job(), "state": "SUCCEEDED"})


def test_job_detail_sums_the_run_time_of_every_attempt() -> None:
    from tui.job_detail import runtime_text

    t0 = 1_795_348_800.0
    events = [
        {"at": t0, "kind": "state", "state": "PROVISIONING", "data": {"attempt": 1}},
        {"at": t0 + 1, "kind": "state", "state": "RUNNING"},
        {"at": t0 + 8, "kind": "preempted", "state": "RECOVERING"},  # 7 s
        {"at": t0 + 9, "kind": "state", "state": "PROVISIONING", "data": {"attempt": 2}},
        {"at": t0 + 10, "kind": "state", "state": "RUNNING"},
        {"at": t0 + 22, "kind": "state", "state": "SUCCEEDED"},  # 12 s
    ]
    job = {"state": "SUCCEEDED", "started_at": t0 + 10, "ended_at": t0 + 22, "events": events}
    assert runtime_text(job, t0 + 100) == "19s over 2 attempts"
    assert runtime_text({**job, "events": events[-3:]}, t0 + 100) == "12s"


def test_job_detail_says_what_data_left_the_clouds_for_the_job() -> None:
    import datetime as dt

    from tui.job_detail import summary_text

    at = 1_795_348_800.0
    out = [
        {
            "what": "checkpoint",
            "bytes": 12_000_000_000,
            "cost": 1.08,
            "transfers": 3,
            "last_at": at,
        },
        {"what": "log", "bytes": 950, "cost": 0.000086, "transfers": 1, "last_at": at},
    ]
    text = summary_text(running_job(data_out=out), T0 + 60).plain.splitlines()
    when = dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
    assert text[3] == (
        f"data out checkpoints 12.00 GB in 3 pulls, $1.08 (last {when});"
        f" logs 950 B in 1 batch, $0.000086 (last {when})"
    )
    assert not any(
        line.startswith("data out") for line in summary_text(running_job(), T0).plain.splitlines()
    )


def test_a_job_being_cancelled_reads_cancelling_and_its_event_says_so_before_a_fetch() -> None:
    job = running_job()
    assert plain(job_rows.cells(job, T0 + 60, {}))["state"] == "RUNNING"
    stopping = job_rows.apply_event(job, {"at": T0 + 5, "kind": "cancel_requested", "state": None})
    assert stopping is not None and stopping["cancel_requested"] is True
    colours = {"text-warning": "#ffaa00", "text-success": "#00ff00"}
    cell = job_rows.cells(stopping, T0 + 60, colours)["state"]
    assert cell.plain.strip() == "CANCELLING"
    assert "#ffaa00" in str(cell.spans[0].style)
    assert state_text(stopping) == "RUNNING (cancelling)"
    ended = job_rows.apply_event(stopping, {"at": T0 + 9, "kind": "state", "state": "CANCELLED"})
    assert ended is not None and plain(job_rows.cells(ended, T0 + 60, {}))["state"] == "CANCELLED"
