"""Loading trace directories: the shipped set, and clear errors for broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skyd.errors import CatalogError, TraceError
from skyd.market import load_trace_set

SHIPPED = Path(__file__).resolve().parents[2] / "catalogs" / "traces" / "aws-v100-3zone"


def write_set(
    root: Path,
    rows: dict[str, list[tuple[str, str]]],
    prices: dict[str, list[float]] | None = None,
    meta_extra: dict[str, object] | None = None,
) -> Path:
    zones: dict[str, dict[str, object]] = {}
    for zone, lines in rows.items():
        (root / f"{zone}.csv").write_text(
            "date,availability\n" + "".join(f"{d},{a}\n" for d, a in lines)
        )
        spec: dict[str, object] = {"region": zone[:-1], "availability_file": f"{zone}.csv"}
        if prices is not None:
            spec["spot_prices_key"] = zone
        else:
            spec["spot_price"] = 0.5
        zones[zone] = spec
    meta: dict[str, object] = {"name": "t", "on_demand_price": 2.0, "zones": zones}
    if prices is not None:
        (root / "prices.json").write_text(json.dumps(prices))
        meta["spot_prices_file"] = "prices.json"
    meta.update(meta_extra or {})
    (root / "meta.json").write_text(json.dumps(meta))
    return root


ROWS = [("2023-01-01 00:00:00", "1"), ("2023-01-01 00:03:15", "0"), ("2023-01-01 00:06:30", "1")]


def test_shipped_set_loads_with_per_tick_prices() -> None:
    traces = load_trace_set(SHIPPED)
    assert traces.zone_names == ["us-east-1c", "us-east-2b", "us-west-2a"]
    assert len(traces) == 1330
    assert traces.tick_seconds == 195.0
    zone = traces.zone("us-east-2b")
    assert zone.region == "us-east-2"
    assert zone.on_demand_price == 3.06
    assert zone.available.dtype == np.bool_
    assert zone.spot_price.shape == (1330,)
    assert 0.9 < float(zone.spot_price.min()) < 1.1


def test_constant_spot_price_and_zone_override(tmp_path: Path) -> None:
    write_set(tmp_path, {"us-a1": ROWS})
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["zones"]["us-a1"]["on_demand_price"] = 4.5
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    traces = load_trace_set(tmp_path)
    zone = traces.zone("us-a1")
    assert zone.available.tolist() == [True, False, True]
    assert zone.spot_price.tolist() == [0.5, 0.5, 0.5]
    assert zone.on_demand_price == 4.5
    assert traces.timestamps[1] - traces.timestamps[0] == 195.0


def test_missing_directory_and_meta(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="does not exist"):
        load_trace_set(tmp_path / "nope")
    with pytest.raises(TraceError, match=r"meta\.json' is missing"):
        load_trace_set(tmp_path)


def test_trace_error_is_a_catalog_error() -> None:
    assert issubclass(TraceError, CatalogError)
    assert TraceError("x").code == "trace_error"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([("2023-01-01 00:00:00", "2")], "availability must be 0 or 1"),
        ([("yesterday", "1")], "YYYY-MM-DD HH:MM:SS"),
        ([("2023-01-01 00:03:00", "1"), ("2023-01-01 00:00:00", "1")], "strictly increasing"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, lines: list[tuple[str, str]], message: str) -> None:
    write_set(tmp_path, {"us-a1": lines})
    with pytest.raises(TraceError, match=message):
        load_trace_set(tmp_path)


def test_bad_header(tmp_path: Path) -> None:
    write_set(tmp_path, {"us-a1": ROWS})
    (tmp_path / "us-a1.csv").write_text("when,up\n2023-01-01 00:00:00,1\n")
    with pytest.raises(TraceError, match="header must be 'date,availability'"):
        load_trace_set(tmp_path)


def test_zones_must_share_timestamps(tmp_path: Path) -> None:
    write_set(tmp_path, {"us-a1": ROWS, "us-b1": ROWS[:2]})
    with pytest.raises(TraceError, match="same timestamps"):
        load_trace_set(tmp_path)


def test_short_price_series_and_unknown_key(tmp_path: Path) -> None:
    write_set(tmp_path, {"us-a1": ROWS}, prices={"us-a1": [1.0, 1.0]})
    with pytest.raises(TraceError, match="fewer than the 3 rows"):
        load_trace_set(tmp_path)
    write_set(tmp_path, {"us-a1": ROWS}, prices={"other": [1.0, 1.0, 1.0]})
    with pytest.raises(TraceError, match="not a key of the spot_prices_file"):
        load_trace_set(tmp_path)


def test_missing_on_demand_price_and_bad_json(tmp_path: Path) -> None:
    write_set(tmp_path, {"us-a1": ROWS}, meta_extra={"on_demand_price": None})
    with pytest.raises(TraceError, match="no on_demand_price"):
        load_trace_set(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(TraceError, match="not valid JSON"):
        load_trace_set(tmp_path)


def test_select_and_rows(tmp_path: Path) -> None:
    write_set(tmp_path, {"us-a1": ROWS, "us-b1": ROWS})
    traces = load_trace_set(tmp_path)
    assert traces.select(["us-b1"]).zone_names == ["us-b1"]
    with pytest.raises(TraceError, match=r"no zone 'us-c1'.*us-a1, us-b1"):
        traces.select(["us-c1"])
    cut = traces.rows(1, 3)
    assert len(cut) == 2
    assert cut.zone("us-a1").available.tolist() == [False, True]
