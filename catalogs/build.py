"""Builds the shipped offering catalogs (catalogs/*.csv) from the reference data, deterministically.

Usage: python catalogs/build.py [--source DIR] [--out DIR]

The source is the normalized reference catalog in /work/shared/data/catalog/ (see its README).
Every transformation made here is listed, with its reason, in catalogs/PROVENANCE.md; keep
the two in step.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

DEFAULT_SOURCE = Path("/work/shared/data/catalog")
DEFAULT_OUT = Path(__file__).resolve().parent

HEADER = (
    "cloud",
    "instance_type",
    "accelerator_name",
    "accelerator_count",
    "vcpus",
    "memory_gib",
    "price",
    "spot_price",
    "region",
    "zone",
)
REGIONS_HEADER = ("cloud", "region", "country", "continent")
CLOUDS = ("aws", "gcp", "azure", "lambda")


@dataclass(frozen=True, slots=True)
class Row:
    """One output row; prices are decimal strings ('' = not sold that way)."""

    cloud: str
    instance_type: str
    accelerator_name: str
    accelerator_count: str
    vcpus: str
    memory_gib: str
    price: str
    spot_price: str
    region: str
    zone: str

    def fields(self) -> tuple[str, ...]:
        return (
            self.cloud,
            self.instance_type,
            self.accelerator_name,
            self.accelerator_count,
            self.vcpus,
            self.memory_gib,
            self.price,
            self.spot_price,
            self.region,
            self.zone,
        )


def read_source(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def to_row(source: dict[str, str]) -> Row:
    return Row(*(source[name] for name in HEADER))


def priced(row: Row) -> bool:
    return bool(row.price or row.spot_price)


# --- AWS -------------------------------------------------------------------------------------

# AWS publishes 16 Trainium2 chips for trn2.48xlarge; the source leaves the accelerator empty.
AWS_ACCELERATOR_FILLS = {"trn2.48xlarge": ("Trainium2", "16")}


def build_aws(rows: Sequence[Row]) -> list[Row]:
    merged: dict[tuple[str, str, str], Row] = {}
    for row in rows:
        if row.instance_type in AWS_ACCELERATOR_FILLS and not row.accelerator_name:
            name, count = AWS_ACCELERATOR_FILLS[row.instance_type]
            row = replace(row, accelerator_name=name, accelerator_count=count)
        key = (row.instance_type, row.region, row.zone)
        seen = merged.get(key)
        if seen is None:
            merged[key] = row
            continue
        # p4de.24xlarge is listed twice in five zones: one row with a spot price, one
        # without, same on-demand price. One offering, so keep one row with both prices.
        if seen.price != row.price or (seen.spot_price and row.spot_price):
            raise SystemExit(f"aws: conflicting duplicate rows for {key}: {seen} / {row}")
        merged[key] = replace(seen, spot_price=seen.spot_price or row.spot_price)
    return [row for row in merged.values() if priced(row)]


# CPU families whose every size is listed. The source transcribes only some sizes of each
# (c5.xlarge/4xlarge, m5.large/xlarge/2xlarge, r5.2xlarge); AWS prices a family linearly in its
# vCPUs within a region (checked on the source: exact in 20 of 22 regions, and within the
# source's 3-decimal rounding in me-central-1 and me-south-1), so the other sizes are priced
# from the transcribed ones. Sizes, vCPUs and memory come from AWS's Spot Instance Advisor feed
# (aws-spot-advisor.json beside the catalog); a size is listed in a region only where that feed
# lists it, in the zones where the family's transcribed sizes are. Spot prices are per zone and
# not linear, so a derived size is on-demand only.
AWS_CPU_FAMILIES = ("c5", "m5", "r5")
DERIVED_PRICE_PLACES = Decimal("0.000001")


def derive_aws_cpu_sizes(rows: Sequence[Row], advisor: dict[str, object]) -> list[Row]:
    """On-demand rows for the sizes of AWS_CPU_FAMILIES the source does not transcribe."""
    sizes = advisor["instance_types"]
    sold = advisor["spot_advisor"]
    assert isinstance(sizes, dict) and isinstance(sold, dict)
    listed = {(row.instance_type, row.region) for row in rows}
    out: list[Row] = []
    for family in AWS_CPU_FAMILIES:
        known = [r for r in rows if r.instance_type.split(".")[0] == family and r.price]
        by_region: dict[str, list[Row]] = {}
        for row in known:
            by_region.setdefault(row.region, []).append(row)
        members = sorted(name for name in sizes if name.split(".")[0] == family)
        for region, region_rows in sorted(by_region.items()):
            # the largest transcribed size carries the most significant digits
            base = max(region_rows, key=lambda r: (Decimal(r.vcpus), r.instance_type))
            per_vcpu = Decimal(base.price) / Decimal(base.vcpus)
            zones = sorted({r.zone for r in region_rows})
            offered = sold.get(region, {}).get("Linux", {})
            for name in members:
                if (name, region) in listed or name not in offered:
                    continue
                spec = sizes[name]
                vcpus = Decimal(spec["cores"])
                price = (per_vcpu * vcpus).quantize(DERIVED_PRICE_PLACES)
                memory = Decimal(str(spec["ram_gb"]))
                for zone in zones:
                    out.append(
                        Row(
                            cloud="aws",
                            instance_type=name,
                            accelerator_name="",
                            accelerator_count="",
                            vcpus=format(vcpus.normalize(), "f"),
                            memory_gib=format(memory.normalize(), "f"),
                            price=format(price.normalize(), "f"),
                            spot_price="",
                            region=region,
                            zone=zone,
                        )
                    )
    return out


def read_advisor(source: Path) -> dict[str, object]:
    """AWS's Spot Instance Advisor feed, kept beside the reference catalog."""
    data: dict[str, object] = json.loads(
        (source.parent / "aws-spot-advisor.json").read_text(encoding="utf-8")
    )
    return data


# --- GCP -------------------------------------------------------------------------------------

# Machine types that always come with a fixed set of GPUs: (accelerator, count).
GCP_FIXED_GPU_SHAPES: dict[str, tuple[str, int]] = {
    "a2-highgpu-1g": ("A100", 1),
    "a2-highgpu-2g": ("A100", 2),
    "a2-highgpu-4g": ("A100", 4),
    "a2-highgpu-8g": ("A100", 8),
    "a2-megagpu-16g": ("A100", 16),
    "a2-ultragpu-1g": ("A100-80GB", 1),
    "a2-ultragpu-2g": ("A100-80GB", 2),
    "a2-ultragpu-4g": ("A100-80GB", 4),
    "a2-ultragpu-8g": ("A100-80GB", 8),
    "a3-highgpu-1g": ("H100", 1),
    "a3-highgpu-2g": ("H100", 2),
    "a3-highgpu-4g": ("H100", 4),
    "a3-highgpu-8g": ("H100", 8),
    "a3-edgegpu-8g": ("H100", 8),
    "a3-edgegpu-8g-nolssd": ("H100", 8),
    "a3-megagpu-8g": ("H100-MEGA", 8),
    "a3-ultragpu-8g": ("H200", 8),
    "a3-ultragpu-8g-nolssd": ("H200", 8),
    # Google's published G2 shapes.
    "g2-standard-4": ("L4", 1),
    "g2-standard-8": ("L4", 1),
    "g2-standard-12": ("L4", 1),
    "g2-standard-16": ("L4", 1),
    "g2-standard-24": ("L4", 2),
    "g2-standard-32": ("L4", 1),
    "g2-standard-48": ("L4", 4),
    "g2-standard-96": ("L4", 8),
}
# GPUs attached to an N1 host; every count here is within Google's per-count vCPU/memory
# limits for both n1-standard-4 and n1-standard-8, the only N1 shapes in the source.
GCP_N1_GPUS = ("T4", "V100", "P100", "P4")
GCP_N1_HOSTS = ("n1-standard-4", "n1-standard-8")
# Plain CPU machine types kept as CPU-only offerings.
GCP_CPU_TYPES = ("n1-standard-4", "n1-standard-8", "n2-standard-8")


def n1_instance_type(host: str, accelerator: str, count: int) -> str:
    """Offer.key must be unique, so an N1 host with GPUs gets a composite name.

    The GCE machine type is the part before '+' (see skyd.catalog.gce_machine_type).
    """
    return f"{host}+{accelerator}x{count}"


def add_prices(host: str, accelerator: str) -> str:
    """Exact sum of two decimal price strings; '' if either side is not sold that way."""
    if not host or not accelerator:
        return ""
    total = Decimal(host) + Decimal(accelerator)
    return format(total.normalize(), "f")


def combine(host: dict[str, str], accel: dict[str, str], instance_type: str) -> Row:
    return Row(
        cloud="gcp",
        instance_type=instance_type,
        accelerator_name=accel["accelerator_name"],
        accelerator_count=accel["accelerator_count"],
        vcpus=host["vcpus"],
        memory_gib=host["memory_gib"],
        price=add_prices(host["price"], accel["price"]),
        spot_price=add_prices(host["spot_price"], accel["spot_price"]),
        region=host["region"],
        zone=host["zone"],
    )


def build_gcp(source: Sequence[dict[str, str]]) -> list[Row]:
    hosts: dict[tuple[str, str], dict[str, str]] = {}
    accels: dict[tuple[str, int, str], dict[str, str]] = {}
    for rec in source:
        if rec["row_kind"] == "vm":
            hosts[(rec["instance_type"], rec["zone"])] = rec
        elif rec["row_kind"] == "accelerator" and not rec["accelerator_name"].startswith("tpu-"):
            key = (rec["accelerator_name"], int(rec["accelerator_count"]), rec["zone"])
            if key in accels and accels[key] != rec:
                raise SystemExit(f"gcp: conflicting accelerator rows for {key}")
            accels[key] = rec

    out: list[Row] = []
    for (machine, zone), host in hosts.items():
        if machine in GCP_CPU_TYPES:
            out.append(to_row(host))
        shape = GCP_FIXED_GPU_SHAPES.get(machine)
        if shape is not None:
            accel = accels.get((shape[0], shape[1], zone))
            if accel is not None:
                out.append(combine(host, accel, machine))
        if machine in GCP_N1_HOSTS:
            for (name, count, accel_zone), accel in accels.items():
                if accel_zone == zone and name in GCP_N1_GPUS:
                    out.append(combine(host, accel, n1_instance_type(machine, name, count)))
    return [row for row in out if priced(row)]


def gcp_unpaired(source: Sequence[dict[str, str]], built: Sequence[Row]) -> list[str]:
    """Source rows that ended up in no offering (reported by --report, listed in PROVENANCE)."""
    used_hosts = {(r.instance_type.split("+")[0], r.zone) for r in built}
    used_accels = {(r.accelerator_name, r.accelerator_count, r.zone) for r in built}
    lines = []
    for rec in source:
        if rec["row_kind"] == "vm" and (rec["instance_type"], rec["zone"]) not in used_hosts:
            lines.append(f"vm {rec['instance_type']} {rec['zone']}")
        if rec["row_kind"] == "accelerator" and not rec["accelerator_name"].startswith("tpu-"):
            key = (rec["accelerator_name"], rec["accelerator_count"], rec["zone"])
            if key not in used_accels:
                lines.append(f"accelerator {key[0]}x{key[1]} {key[2]}")
    return lines


# --- Azure -----------------------------------------------------------------------------------

# Per Azure's size documentation. The source's ND96isr_H100_v5 count (12) is wrong: 8 GPUs.
AZURE_ACCELERATOR_FIXES: dict[str, tuple[str, str]] = {
    "Standard_ND96isr_H100_v5": ("H100", "8"),
    "Standard_NC32ads_A10_v4": ("A10", "1"),
    "Standard_NCC40ads_H100_v5": ("H100", "1"),
}
# Sizes that carry a fraction of one GPU, which an integer accelerator count cannot express.
AZURE_FRACTIONAL_GPU_TYPES = frozenset(
    {
        "Standard_NC8ads_A10_v4",
        "Standard_NC16ads_A10_v4",
        "Standard_NV4as_v4",
        "Standard_NV8as_v4",
        "Standard_NV16as_v4",
    }
)


def build_azure(rows: Sequence[Row]) -> list[Row]:
    out = []
    for row in rows:
        if row.instance_type in AZURE_FRACTIONAL_GPU_TYPES:
            continue
        fix = AZURE_ACCELERATOR_FIXES.get(row.instance_type)
        if fix is not None:
            row = replace(row, accelerator_name=fix[0], accelerator_count=fix[1])
        if priced(row):
            out.append(row)
    return out


# --- regions ---------------------------------------------------------------------------------

# ISO-3166 alpha-2 country and continent (NA, SA, EU, AS, OC, AF; the Middle East is AS).
REGION_LOCATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("aws", "af-south-1"): ("ZA", "AF"),
    ("aws", "ap-east-1"): ("HK", "AS"),
    ("aws", "ap-northeast-1"): ("JP", "AS"),
    ("aws", "ap-northeast-2"): ("KR", "AS"),
    ("aws", "ap-northeast-3"): ("JP", "AS"),
    ("aws", "ap-south-1"): ("IN", "AS"),
    ("aws", "ap-southeast-1"): ("SG", "AS"),
    ("aws", "ap-southeast-2"): ("AU", "OC"),
    ("aws", "ap-southeast-3"): ("ID", "AS"),
    ("aws", "ca-central-1"): ("CA", "NA"),
    ("aws", "eu-central-1"): ("DE", "EU"),
    ("aws", "eu-north-1"): ("SE", "EU"),
    ("aws", "eu-south-1"): ("IT", "EU"),
    ("aws", "eu-west-1"): ("IE", "EU"),
    ("aws", "eu-west-2"): ("GB", "EU"),
    ("aws", "eu-west-3"): ("FR", "EU"),
    ("aws", "me-central-1"): ("AE", "AS"),
    ("aws", "me-south-1"): ("BH", "AS"),
    ("aws", "us-east-1"): ("US", "NA"),
    ("aws", "us-east-2"): ("US", "NA"),
    ("aws", "us-west-1"): ("US", "NA"),
    ("aws", "us-west-2"): ("US", "NA"),
    ("gcp", "africa-south1"): ("ZA", "AF"),
    ("gcp", "asia-east1"): ("TW", "AS"),
    ("gcp", "asia-east2"): ("HK", "AS"),
    ("gcp", "asia-northeast1"): ("JP", "AS"),
    ("gcp", "asia-northeast2"): ("JP", "AS"),
    ("gcp", "asia-northeast3"): ("KR", "AS"),
    ("gcp", "asia-south1"): ("IN", "AS"),
    ("gcp", "asia-south2"): ("IN", "AS"),
    ("gcp", "asia-southeast1"): ("SG", "AS"),
    ("gcp", "asia-southeast2"): ("ID", "AS"),
    ("gcp", "australia-southeast1"): ("AU", "OC"),
    ("gcp", "australia-southeast2"): ("AU", "OC"),
    ("gcp", "europe-central2"): ("PL", "EU"),
    ("gcp", "europe-north1"): ("FI", "EU"),
    ("gcp", "europe-southwest1"): ("ES", "EU"),
    ("gcp", "europe-west1"): ("BE", "EU"),
    ("gcp", "europe-west10"): ("DE", "EU"),
    ("gcp", "europe-west12"): ("IT", "EU"),
    ("gcp", "europe-west2"): ("GB", "EU"),
    ("gcp", "europe-west3"): ("DE", "EU"),
    ("gcp", "europe-west4"): ("NL", "EU"),
    ("gcp", "europe-west6"): ("CH", "EU"),
    ("gcp", "europe-west8"): ("IT", "EU"),
    ("gcp", "europe-west9"): ("FR", "EU"),
    ("gcp", "me-central1"): ("QA", "AS"),
    ("gcp", "me-central2"): ("SA", "AS"),
    ("gcp", "me-west1"): ("IL", "AS"),
    ("gcp", "northamerica-northeast1"): ("CA", "NA"),
    ("gcp", "northamerica-northeast2"): ("CA", "NA"),
    ("gcp", "southamerica-east1"): ("BR", "SA"),
    ("gcp", "southamerica-west1"): ("CL", "SA"),
    ("gcp", "us-central1"): ("US", "NA"),
    ("gcp", "us-central2"): ("US", "NA"),
    ("gcp", "us-east1"): ("US", "NA"),
    ("gcp", "us-east4"): ("US", "NA"),
    ("gcp", "us-east5"): ("US", "NA"),
    ("gcp", "us-south1"): ("US", "NA"),
    ("gcp", "us-west1"): ("US", "NA"),
    ("gcp", "us-west2"): ("US", "NA"),
    ("gcp", "us-west3"): ("US", "NA"),
    ("gcp", "us-west4"): ("US", "NA"),
    ("azure", "centralus"): ("US", "NA"),
    ("azure", "eastus"): ("US", "NA"),
    ("azure", "eastus2"): ("US", "NA"),
    ("azure", "northcentralus"): ("US", "NA"),
    ("azure", "southcentralus"): ("US", "NA"),
    ("azure", "westcentralus"): ("US", "NA"),
    ("azure", "westus"): ("US", "NA"),
    ("azure", "westus2"): ("US", "NA"),
    ("azure", "westus3"): ("US", "NA"),
    # Lambda's own region descriptions: asia-northeast-1 is Osaka and -2 is Tokyo.
    ("lambda", "asia-northeast-1"): ("JP", "AS"),
    ("lambda", "asia-northeast-2"): ("JP", "AS"),
    ("lambda", "asia-south-1"): ("IN", "AS"),
    ("lambda", "australia-east-1"): ("AU", "OC"),
    ("lambda", "europe-central-1"): ("DE", "EU"),
    ("lambda", "europe-south-1"): ("IT", "EU"),
    ("lambda", "me-west-1"): ("IL", "AS"),
    ("lambda", "us-east-1"): ("US", "NA"),
    ("lambda", "us-east-2"): ("US", "NA"),
    ("lambda", "us-east-3"): ("US", "NA"),
    ("lambda", "us-midwest-1"): ("US", "NA"),
    ("lambda", "us-south-1"): ("US", "NA"),
    ("lambda", "us-south-2"): ("US", "NA"),
    ("lambda", "us-south-3"): ("US", "NA"),
    ("lambda", "us-west-1"): ("US", "NA"),
    ("lambda", "us-west-2"): ("US", "NA"),
    ("lambda", "us-west-3"): ("US", "NA"),
}


def region_rows(catalogs: dict[str, list[Row]]) -> list[tuple[str, str, str, str]]:
    present = sorted({(row.cloud, row.region) for rows in catalogs.values() for row in rows})
    missing = [key for key in present if key not in REGION_LOCATIONS]
    if missing:
        raise SystemExit(f"regions without a country/continent entry: {missing}")
    return [(cloud, region, *REGION_LOCATIONS[(cloud, region)]) for cloud, region in present]


# --- output ----------------------------------------------------------------------------------

_NATURAL = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, str], ...]:
    """Sort 'g2-standard-8' before 'g2-standard-12' so the files read naturally."""
    return tuple((int(part), "") if part.isdigit() else (0, part) for part in _NATURAL.split(text))


def render(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def build_all(source: Path) -> dict[str, str]:
    """File name → exact file content for every shipped catalog file."""
    aws = build_aws([to_row(rec) for rec in read_source(source / "aws.csv")])
    aws += derive_aws_cpu_sizes(aws, read_advisor(source))
    catalogs = {
        "aws": aws,
        "gcp": build_gcp(read_source(source / "gcp.csv")),
        "azure": build_azure([to_row(rec) for rec in read_source(source / "azure.csv")]),
        "lambda": [to_row(rec) for rec in read_source(source / "lambda.csv")],
    }
    files = {}
    for cloud, rows in catalogs.items():
        ordered = sorted(
            rows, key=lambda r: (natural_key(r.instance_type), r.region, r.zone, r.fields())
        )
        files[f"{cloud}.csv"] = render(HEADER, (row.fields() for row in ordered))
    files["regions.csv"] = render(REGIONS_HEADER, region_rows(catalogs))
    return files


def iter_report(source: Path) -> Iterator[str]:
    gcp_source = read_source(source / "gcp.csv")
    for line in gcp_unpaired(gcp_source, build_gcp(gcp_source)):
        yield f"gcp unpaired: {line}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--report", action="store_true", help="list source rows left out, write nothing"
    )
    args = parser.parse_args(argv)
    if args.report:
        for line in iter_report(args.source):
            print(line)
        return 0
    for name, content in build_all(args.source).items():
        (args.out / name).write_text(content, encoding="utf-8")
        print(f"{args.out / name}: {content.count(chr(10)) - 1} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
