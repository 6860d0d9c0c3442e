"""The stable command line of bench.spot, run end to end on the shipped trace set."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.spot.__main__ import main
from skyd.market import shipped_trace_dir

REQUIRED = {
    "policy",
    "traces",
    "start",
    "job_fraction",
    "changeover_hours",
    "cost",
    "on_demand_cost",
    "optimal_cost",
    "missed_deadline",
}


def run(tmp_path: Path, *extra: str) -> list[dict[str, str]]:
    code = main(
        [
            "--traces", str(shipped_trace_dir()), "--out", str(tmp_path),
            "--job-hours", "3", "--job-fraction", "0.6,0.9", "--changeover-hours", "0.2",
            "--starts", "4", "--seed", "5", "--workers", "1", *extra,
        ]
    )  # fmt: skip
    assert code == 0
    with (tmp_path / "results.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_single_zone_sweep_writes_results_summary_and_plot(tmp_path: Path) -> None:
    rows = run(tmp_path)
    assert set(rows[0]) >= REQUIRED
    # 5 policies x 3 zones x 4 starts x 2 fractions x 1 d
    assert len(rows) == 5 * 3 * 4 * 2
    assert {r["traces"].split("/")[-1] for r in rows} == {"us-east-1c", "us-east-2b", "us-west-2a"}
    assert all(r["missed_deadline"] == "0" for r in rows)
    assert all(float(r["cost"]) >= float(r["optimal_cost"]) - 1e-6 for r in rows)
    assert (tmp_path / "summary.csv").stat().st_size > 0
    assert (tmp_path / "cost.png").read_bytes()[:4] == b"\x89PNG"


def test_same_seed_same_results_and_zone_sets(tmp_path: Path) -> None:
    first = run(tmp_path / "a", "--zones", "us-east-2b,us-west-2a")
    again = run(tmp_path / "b", "--zones", "us-east-2b,us-west-2a")
    assert first == again
    assert {r["traces"] for r in first} == {"aws-v100-3zone/us-east-2b+us-west-2a"}


def test_json_prints_one_object_per_fraction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(tmp_path, "--json")
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one JSON object on stdout
    assert set(data["fractions"]) == {"0.6", "0.9"}
    for entry in data["fractions"].values():
        assert {"skyd", "up", "optimum"} <= set(entry)
        for policy in ("skyd", "up"):
            assert set(entry[policy]) >= {"ratio", "gap", "misses"}
            assert entry[policy]["misses"] == 0
            assert entry[policy]["gap"] >= 0
            assert entry[policy]["ratio"] >= entry["optimum"]["ratio"] - 1e-9
        assert entry["optimum"]["gap"] == 0
    assert data["changeover_hours"] == [0.2]


def test_synthetic_traces_from_a_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--synthetic", "4", "--out", str(tmp_path), "--job-hours", "6", "--job-fraction", "0.8",
         "--changeover-hours", "0.2", "--starts", "3", "--workers", "1", "--json",
         "--policies", "up,skyd"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fractions"]["0.8"]["skyd"]["runs"] == 6 * 3  # 6 zones x 3 starts
    meta = json.loads((tmp_path / "synthetic-4" / "meta.json").read_text())
    assert len(meta["zones"]) == 6
    prices = {z["on_demand_price"] for z in meta["zones"].values()}
    assert len(prices) == 3  # per-region on-demand prices


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--traces", str(shipped_trace_dir()), "--out", str(tmp_path),
                 "--zones", "nowhere-1a"]) == 2  # fmt: skip
    assert "no zone 'nowhere-1a'" in capsys.readouterr().err
    assert main(["--traces", str(shipped_trace_dir()), "--out", str(tmp_path)]) == 2
    assert "use a smaller --job-hours" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--traces", "x", "--out", "y", "--job-fraction", "1.5"])


def test_hindsight_zone_adds_its_figures_and_changes_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = ("--zones", "us-east-1c,us-east-2b,us-west-2a", "--json")
    plain = run(tmp_path / "plain", *zones)
    plain_json = json.loads(capsys.readouterr().out)
    with_it = run(tmp_path / "with", *zones, "--hindsight-zone")
    data = json.loads(capsys.readouterr().out)
    added = {"hindsight_zone_cost", "hindsight_zone_gap"}
    assert set(with_it[0]) - set(plain[0]) == added
    assert [{k: v for k, v in r.items() if k not in added} for r in with_it] == plain
    for fraction, entry in data["fractions"].items():
        figure = entry.pop("hindsight_zone")
        assert entry == plain_json["fractions"][fraction]
        assert figure["gap"] >= 0 and figure["ratio"] >= entry["optimum"]["ratio"] - 1e-9
        runs = [r for r in with_it if float(r["job_fraction"]) == float(fraction)]
        gaps = [float(r["hindsight_zone_cost"]) / float(r["optimal_cost"]) - 1 for r in runs]
        assert figure["gap"] == pytest.approx(sum(gaps) / len(gaps), abs=1e-4)
    with (tmp_path / "with" / "summary.csv").open() as fh:
        assert "mean_hindsight_zone_gap" in next(csv.DictReader(fh))


def test_hindsight_zone_with_one_zone_is_ignored_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = run(tmp_path, "--zones", "us-east-2b", "--hindsight-zone")
    assert "--hindsight-zone ignored" in capsys.readouterr().err
    assert "hindsight_zone_cost" not in rows[0]


def test_a_probe_retried_seconds_later_runs_on_a_finer_lattice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Real probing is irregular: a probe retried 2 s after another would share a 15 s
    # lattice row with it. The sweep picks a finer lattice instead of refusing the set.
    traces = tmp_path / "traces"
    shutil.copytree(shipped_trace_dir(), traces)
    meta = json.loads((traces / "meta.json").read_text())
    names = {z["availability_file"] for z in meta["zones"].values()}
    for name in names:
        with (traces / name).open() as fh:
            rows = list(csv.reader(fh))
        retried = datetime.fromisoformat(rows[40][0]) + timedelta(seconds=2)
        rows.insert(41, [retried.strftime("%Y-%m-%d %H:%M:%S"), rows[40][1]])
        with (traces / name).open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    if "spot_prices_file" in meta:
        prices = json.loads((traces / meta["spot_prices_file"]).read_text())
        for series in prices.values():
            series.insert(41, series[40])
        (traces / meta["spot_prices_file"]).write_text(json.dumps(prices))
    code = main(
        [
            "--traces", str(traces), "--out", str(tmp_path / "out"), "--zones", "us-east-1c",
            "--job-hours", "3", "--job-fraction", "0.8", "--changeover-hours", "0.2",
            "--starts", "3", "--workers", "1", "--policies", "skyd,up", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    entry = result["fractions"]["0.8"]
    assert entry["skyd"]["runs"] == 3 and entry["skyd"]["misses"] == 0
    assert entry["skyd"]["gap"] >= -1e-9 and entry["up"]["gap"] >= -1e-9
