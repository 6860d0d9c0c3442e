"""bench.spot.synthetic's two families: the default set unchanged, and many alike zones."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.spot.synthetic import generate, main
from skyd.market.traces import load_trace_set


def digest(directory: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(directory.iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_the_default_family_writes_the_same_set_as_before_families(tmp_path: Path) -> None:
    # The figures in bench/spot/README.md were measured on these sets: a change to the
    # default family's output would silently move them (digest taken before `--family`).
    out = generate(1, tmp_path / "a", 5.0)
    assert digest(out) == "a5760713a7457da99f5acfd3024913c3474a2c8bfdf04752a7b47005a7ab2227"
    assert digest(generate(1, tmp_path / "b", 5.0, family="regions")) == digest(out)


def up_runs(available: np.ndarray, tick_hours: float) -> np.ndarray:
    flips = np.flatnonzero(np.diff(available.astype(np.int8))) + 1
    bounds = np.concatenate([[0], flips, [len(available)]])
    return np.array([(b - a) * tick_hours for a, b in itertools.pairwise(bounds) if available[a]])


def test_many_zones_are_alike_memoryless_zones_several_a_region(tmp_path: Path) -> None:
    out = generate(2, tmp_path / "m", 30.0, family="many-zones")
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["zones"]) == 13
    per_region = Counter(z["region"] for z in meta["zones"].values())
    assert len(per_region) == 4 and min(per_region.values()) >= 3
    traces = load_trace_set(out)
    assert traces.tick_seconds == pytest.approx(600, abs=5)
    for name, zone in traces.zones.items():
        runs = up_runs(np.asarray(zone.available), traces.tick_seconds / 3600)
        # exponential runs: a month of them has a CV near 1 (2-6 h on average: 100+ runs)
        assert 0.75 < runs.std() / runs.mean() < 1.25, name
        assert 1.5 < runs.mean() < 9.0, name  # 2-6 h drawn; short outages unseen merge runs
        share = float(np.mean(zone.spot_price)) / zone.on_demand_price
        assert 0.25 < share < 0.37, name


def test_an_unknown_family_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown family 'nope'; known: regions, many-zones"):
        generate(1, tmp_path, 5.0, family="nope")
    with pytest.raises(SystemExit) as exit_:
        main(["--seed", "1", "--out", str(tmp_path), "--family", "nope"])
    assert exit_.value.code == 2
