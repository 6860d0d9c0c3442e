"""Benchmark: what data-aware placement adds to single placement (python -m bench.egress).

Times `Placer.decide` (catalog query + decision) on the shipped catalogs for a V100 job and
an "any instance" CPU job (~9,500 candidates, the columnar path), each without data and with
a 2 TB bucket in aws/us-east-1 priced by catalogs/egress.csv, in the same process and run:
the figure is the ratio, with the medians beside it (target: decisions stay ≤ 5 ms). Also
prints the example's decision: where the V100 job goes with 2 TB and with 2 GB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from skyd.catalog import Catalog
from skyd.catalog.locate import default_catalog_dir
from skyd.market.live import LiveMarket
from skyd.optimizer.egress import DataFootprint, DataTransfer, EgressTable, read_egress_table
from skyd.scheduler.placement import PlacementContext, Placer
from skyd.spec import TaskSpec, parse_task

SHAPES = {
    "v100": "resources:\n  accelerators: V100:1\nestimated_runtime: 10h\nrun: x\n",
    "any_instance": "resources:\n  cpus: 2+\nestimated_runtime: 10h\nrun: x\n",
}


class Fixed:
    """A data source that already knows the bucket: `gigabytes` in aws/us-east-1."""

    version = 0

    def __init__(self, table: EgressTable, gigabytes: float) -> None:
        move = DataTransfer("s3://lab-data", "aws", "us-east-1", gigabytes, "in", "inputs")
        self.table, self.move = table, move

    def footprint(self, spec: TaskSpec) -> DataFootprint:
        return DataFootprint((self.move,), self.table)  # a fresh one: no memo carried over

    async def prefetch(self, spec: TaskSpec) -> None:
        return None

    def note(self, url: str) -> str | None:
        return None


def median_ms(placer: Placer, spec: TaskSpec, runs: int) -> float:
    context = PlacementContext(assume_all_providers=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        placer.decide(spec, context=context)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = read_egress_table(default_catalog_dir() / "egress.csv")
    market = LiveMarket(Catalog.load(), {})
    plain, with_data = Placer(market), Placer(market, Fixed(table, 2000.0))
    result: dict[str, object] = {}
    for name, text in SHAPES.items():
        spec = parse_task(text, source=f"{name}.yaml")
        median_ms(plain, spec, 10)  # warm the catalog's indexes and tables
        base = median_ms(plain, spec, args.runs)
        data = median_ms(with_data, spec, args.runs)
        result[f"{name}_ms"] = round(base, 3)
        result[f"{name}_with_egress_ms"] = round(data, 3)
        result[f"{name}_ratio"] = round(data / base, 2)
    spec = parse_task(SHAPES["v100"], source="v100.yaml")
    context = PlacementContext(assume_all_providers=True)
    for gigabytes in (2000.0, 2.0):
        chosen = Placer(market, Fixed(table, gigabytes)).decide(spec, context=context)
        placement = chosen.decision.chosen
        assert placement is not None
        result[f"v100_{gigabytes:g}gb"] = {
            "where": f"{placement.offer.cloud}/{placement.offer.region}",
            "expected_cost": placement.expected_cost_micros / 1e6,
            "egress_cost": placement.egress_cost_micros / 1e6,
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
