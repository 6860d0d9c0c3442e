"""Data-aware placement (the white paper's Inset B): what moving a job's data costs per
(cloud, region) it could run in, from the egress price table (catalogs/egress.csv).

Pure: the data's locations and sizes are looked up elsewhere (skyd.market.data_location) and
arrive here as `DataTransfer` records. Rates are tier-1 list prices (the first tier a lab pays
at): data leaving a cloud to anywhere outside it at its internet rate, to another region of the
same cloud at its inter-region rate, within the region free. A cloud the table does not list
(lambda, a lab's own hosts) bills nothing for data leaving it, so only the other end counts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from skyd.errors import CatalogError

EGRESS_FILE = "egress.csv"
HEADER = ("cloud", "internet_usd_per_gb", "inter_region_usd_per_gb", "same_region_usd_per_gb")
# bucket store → the cloud that bills its egress
STORE_CLOUD = {"s3": "aws", "gcs": "gcp", "azure": "azure", "r2": "r2"}

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class EgressRate:
    """Micro-dollars per GB leaving `cloud`: to the internet (or another cloud), to another of
    its regions, within a region."""

    internet_micros: int
    inter_region_micros: int
    same_region_micros: int = 0
    source: str = ""


@dataclass(frozen=True, slots=True)
class EgressTable:
    rates: Mapping[str, EgressRate] = field(default_factory=dict)

    def per_gb_micros(
        self, source_cloud: str, source_region: str | None, dest_cloud: str, dest_region: str
    ) -> int:
        """$/GB (in micros) for data leaving (source_cloud, source_region) for the destination.
        An unknown source region on the same cloud is priced as another region (the bill a
        lab would see if it is not the same one)."""
        rate = self.rates.get(source_cloud)
        if rate is None:
            return 0
        if source_cloud != dest_cloud:
            return rate.internet_micros
        if source_region is not None and source_region == dest_region:
            return rate.same_region_micros
        return rate.inter_region_micros


def _micros(text: str, where: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise CatalogError(f"{where}: {text!r} is not a number of US dollars per GB") from None
    if not value.is_finite() or value < 0 or value > 10:
        raise CatalogError(f"{where}: {text!r} must be between 0 and 10 US dollars per GB")
    return int(value * 1_000_000)


def read_egress_table(path: Path) -> EgressTable:
    """Parse egress.csv; a bad file is a CatalogError naming the line and column."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        if header[: len(HEADER)] != HEADER:
            raise CatalogError(f"{path}:1: header must start with {','.join(HEADER)}")
        rates: dict[str, EgressRate] = {}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < len(HEADER):
                raise CatalogError(f"{path}:{line}: expected {len(HEADER)} columns or more")
            cloud = row[0].strip().lower()
            values = [_micros(row[i], f"{path}:{line}:{HEADER[i]}") for i in range(1, len(HEADER))]
            source = row[len(HEADER)].strip() if len(row) > len(HEADER) else ""
            rates[cloud] = EgressRate(values[0], values[1], values[2], source)
    return EgressTable(rates)


def find_egress_table(directories: Iterable[Path]) -> EgressTable:
    """The first egress.csv among `directories`; an empty table (no egress cost) if none."""
    for directory in directories:
        path = directory / EGRESS_FILE
        if path.is_file():
            return read_egress_table(path)
    return EgressTable()


@dataclass(frozen=True, slots=True)
class DataTransfer:
    """Data a job moves: `gigabytes` between the bucket at `url` (on `cloud`, in `region`
    when known) and wherever the job runs; "in" is read by the job, "out" written by it."""

    url: str
    cloud: str
    region: str | None
    gigabytes: float
    direction: Direction = "in"
    size_from: str = ""  # how the size is known: "bucket listing", "inputs", "outputs"


@dataclass(slots=True)
class DataFootprint:
    """The job's data and the prices: the egress cost of running in each (cloud, region).

    `cost_micros` is memoized per destination: a placement over the full catalog asks for a
    few hundred regions, then ranks ~10,000 candidates on a column built from them.
    """

    transfers: Sequence[DataTransfer]
    table: EgressTable
    _memo: dict[tuple[str, str], int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(t.gigabytes > 0 for t in self.transfers)

    def cost_micros(self, cloud: str, region: str) -> int:
        key = (cloud, region)
        cost = self._memo.get(key)
        if cost is None:
            cost = 0
            for t in self.transfers:
                if t.direction == "in":
                    rate = self.table.per_gb_micros(t.cloud, t.region, cloud, region)
                else:
                    rate = self.table.per_gb_micros(cloud, region, t.cloud, t.region or "")
                cost += round(t.gigabytes * rate)
            self._memo[key] = cost
        return cost

    def describe(self) -> list[dict[str, object]]:
        """The transfers as `skyctl optimize --json` shows them."""
        return [
            {
                "url": t.url,
                "cloud": t.cloud,
                "region": t.region,
                "gigabytes": t.gigabytes,
                "direction": t.direction,
                "size_from": t.size_from,
            }
            for t in self.transfers
        ]
