"""Benchmark: cold load of the shipped catalogs and typical queries (python -m bench.catalog).

Cold load is timed inside fresh interpreters (import of skyd.catalog + Catalog.load()),
next to a baseline measured in the same run: csv.reader over the same files in a fresh
interpreter. Queries are timed in-process on one loaded catalog. Targets (issue 3):
load ≤ 300 ms, cheapest 1×A100 across all clouds and both markets ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

_LOAD = """
import time
t = time.perf_counter()
from skyd.catalog import Catalog
catalog = Catalog.load()
print(time.perf_counter() - t, len(catalog.offers))
"""

_CSV_BASELINE = """
import time
t = time.perf_counter()
import csv, pathlib, sys
rows = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.csv")):
    with path.open(newline="", encoding="utf-8") as handle:
        rows += sum(1 for _ in csv.reader(handle))
print(time.perf_counter() - t, rows)
"""


def in_fresh_interpreter(code: str, runs: int, *argv: str) -> list[float]:
    """Seconds reported by `code` (its first printed number), one fresh process per run."""
    timings = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
        ).stdout
        timings.append(float(out.split()[0]))
    return timings


def process_wall(args: list[str], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], capture_output=True, check=True)
        timings.append(time.perf_counter() - start)
    return timings


def repeat(call: Callable[[], object], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="catalog load/query benchmark")
    parser.add_argument("--loads", type=int, default=9, help="fresh-process cold loads")
    parser.add_argument("--queries", type=int, default=200, help="repetitions per query")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    args = parser.parse_args(argv)
    if args.loads < 1 or args.queries < 1:
        parser.error("--loads and --queries must be at least 1")

    from skyd.catalog import Catalog, default_catalog_dir
    from skyd.model import Amount, OfferFilter

    load = in_fresh_interpreter(_LOAD, args.loads)
    csv_baseline = in_fresh_interpreter(_CSV_BASELINE, args.loads, str(default_catalog_dir()))
    wall_load = process_wall(["-c", "from skyd.catalog import Catalog; Catalog.load()"], args.loads)
    wall_pass = process_wall(["-c", "pass"], args.loads)

    catalog = Catalog.load()
    queries: dict[str, Callable[[], object]] = {
        "cheapest 1xA100, all clouds, both markets": lambda: catalog.query(
            OfferFilter(accelerators=(("A100", 1),))
        ),
        "H100:8 or A100-80GB:8, spot, US only": lambda: catalog.query(
            OfferFilter(accelerators=(("H100", 8), ("A100-80GB", 8)), spot=True, countries=("US",))
        ),
        "CPU 4+ vCPU 16+ GiB, both markets (6.9k hits)": lambda: catalog.query(
            OfferFilter(cpus=Amount(4, or_more=True), memory_gib=Amount(16, or_more=True))
        ),
        "explain 1xA100, spot, max $2/h": lambda: catalog.explain(
            OfferFilter(accelerators=(("A100", 1),), spot=True, max_hourly_price_micros=2_000_000)
        ),
        "cheapest per accelerator (skyctl prices)": lambda: catalog.cheapest_per_accelerator(
            spot=None
        ),
    }
    query_ms = {
        name: statistics.median(repeat(call, args.queries)) * 1e3 for name, call in queries.items()
    }

    result = {
        "offers": len(catalog.offers),
        "runs": {"cold_loads": args.loads, "query_repeats": args.queries},
        "cold_load_ms": {
            "median_import_plus_load": statistics.median(load) * 1e3,
            "median_baseline_csv_reader": statistics.median(csv_baseline) * 1e3,
            "ratio_to_csv_reader": statistics.median(load) / statistics.median(csv_baseline),
            "median_process_wall_with_load": statistics.median(wall_load) * 1e3,
            "median_process_wall_python_pass": statistics.median(wall_pass) * 1e3,
            "target": 300.0,
        },
        "query_ms_median": query_ms,
        "query_target_ms": 5.0,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    cold = result["cold_load_ms"]
    assert isinstance(cold, dict)
    print(f"{'measure':<48} {'median':>10}")
    print(f"{'cold import + load (fresh process)':<48} {cold['median_import_plus_load']:>7.1f} ms")
    baseline = cold["median_baseline_csv_reader"]
    print(f"{'baseline: csv.reader over the same files':<48} {baseline:>7.1f} ms")
    print(f"{'  ratio load / baseline':<48} {cold['ratio_to_csv_reader']:>9.1f}x")
    print(f"{'process wall: python -c load':<48} {cold['median_process_wall_with_load']:>7.1f} ms")
    print(
        f"{'process wall: python -c pass':<48} {cold['median_process_wall_python_pass']:>7.1f} ms"
    )
    for name, ms in query_ms.items():
        print(f"{'query: ' + name:<48} {ms:>8.3f} ms")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
