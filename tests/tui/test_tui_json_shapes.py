"""Showing endpoints whose exact shapes the dashboard learns at run time."""

from __future__ import annotations

import pytest

from tui.display import dollars, duration, json_cell
from tui.json_table import numeric_series, table_of
from tui.market_pane import offering_id
from tui.spend_pane import with_run_out


def test_the_list_inside_an_object_becomes_the_rows_with_nested_objects_flattened() -> None:
    shape = table_of(
        {
            "count": 2,
            "clusters": [{"name": "a", "where": {"cloud": "aws"}}, {"name": "b", "autostop": 30}],
        }
    )
    assert shape.found_under == "clusters"
    assert shape.columns == ("name", "where.cloud", "autostop")
    assert shape.rows[0]["where.cloud"] == "aws"


def test_a_bare_list_an_object_of_objects_and_a_single_object_all_make_rows() -> None:
    assert table_of([{"a": 1}, {"a": 2}]).rows == ({"a": 1}, {"a": 2})
    by_cloud = table_of({"aws": {"spent": 1.0}, "gcp": {"spent": 2.0}})
    assert by_cloud.columns == ("name", "spent")
    assert table_of({"ok": True}).rows == ({"ok": True},)
    assert table_of({"offers": []}).rows == ()


def test_hidden_columns_are_left_out() -> None:
    shape = table_of([{"key": 1, "name": "ana", "amount_micros": 5}], hide=frozenset({"key"}))
    assert shape.columns == ("name", "amount_micros")


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("amount_micros", 1_500_000, "$1.50"),
        ("hourly_price", 0.004, "$0.0040"),
        ("burn_per_hour", 2, "$2.00"),
        ("data_transfer", 1.08, "$1.08"),  # checkpoint egress, beside what instances cost
        ("data_transfer_bytes", 12_000_000_000, "12.00 GB"),
        ("idle_seconds", 125, "2m05s"),
        ("spot", True, "yes"),
        ("autostop", None, "-"),
        ("count", 3, "3"),
        ("expires_at", "2027-06-30T00:00:00+00:00", "2027-06-30 00:00"),
        ("name", "2027-06-30 is just a name", "2027-06-30 is just a name"),
    ],
)
def test_values_are_written_by_what_their_key_says(
    key: str, value: object, shown: str, utc: None
) -> None:
    assert json_cell(key, value) == shown


def test_durations_and_money_are_compact() -> None:
    assert duration(None) == "-"
    assert duration(59) == "59s"
    assert duration(3 * 3600 + 7 * 60) == "3h07m"
    assert duration(2 * 86400 + 4 * 3600) == "2d04h"
    assert duration(-90) == "-1m30s"
    assert dollars(1234.5) == "$1,234.50"
    assert dollars(0.3, estimated=True) == "~$0.30"


def test_price_history_series_prefers_the_price_and_ignores_times() -> None:
    points = {
        "points": [{"at": 1.0, "volume": 9, "price": 2.0}, {"at": 2.0, "volume": 9, "price": 3.0}]
    }
    assert numeric_series(points, ("price",)) == [2.0, 3.0]
    assert numeric_series([{"t": 1, "usd": 0.5}], ()) == [0.5]
    assert numeric_series([0.1, 0.2], ()) == [0.1, 0.2]
    assert numeric_series({"points": []}, ("price",)) == []


def test_an_offer_is_named_by_its_own_id_or_by_where_and_what_it_is() -> None:
    assert offering_id({"key": "gcp/r/z/a2", "cloud": "gcp"}) == "gcp/r/z/a2"
    assert offering_id({"offering": "gcp:a2:spot", "cloud": "gcp"}) == "gcp:a2:spot"
    assert offering_id({"cloud": "aws", "region": "us-east-1", "instance_type": "g5.xlarge"}) == (
        "aws:us-east-1:g5.xlarge"
    )
    assert offering_id({"accelerator": "A100"}) is None


def test_a_pool_without_its_own_run_out_date_gets_one_from_balance_and_burn(utc: None) -> None:
    now = 1_795_348_800.0  # 2026-11-22 12:00 UTC
    rows = with_run_out(
        [
            {"name": "a", "balance": 48.0, "burn_per_hour": 2.0},
            {"name": "b", "balance_micros": 10_000_000, "burn_per_day": 0.0},
            {"name": "c", "balance": 1.0, "burn_per_hour": 1.0, "projected_run_out": None},
            {"name": "d"},
        ],
        now,
    )
    assert rows[0]["runs_out"] == "2026-11-23 12:00"
    assert rows[1]["runs_out"] == "never"
    assert "runs_out" not in rows[2]  # the daemon's own projection stands
    assert rows[3] == {"name": "d"}
