"""SkyPilot's own catalog files, rebuilt offline from the reference data, for its optimizer.

SkyPilot 0.14 reads `~/.sky/catalogs/v8/<cloud>/vms.csv` and `common/accelerators.csv` and
`common/metadata.csv`, and downloads them from GitHub when they are missing; this machine
has no internet. The reference catalogs in `../shared/data/catalog/` are transcribed from
SkyPilot's own catalog repository (see its README): the same rows, columns renamed, and
`GpuInfo` dropped (kept for GCP GPUs as `gpu_memory_mib`). So writing them back in SkyPilot's
column names gives SkyPilot the data it would have downloaded for those rows.

Choices, so neither side gets more to choose from than the other:
- AWS is written from skyd's shipped `catalogs/aws.csv`, which adds every c5/m5/r5 size
  (catalogs/PROVENANCE.md) to the reference rows; SkyPilot then sees the same CPU types.
- GCP, Azure and Lambda come from the reference rows unchanged: GCP keeps SkyPilot's split
  into host VM rows and separately priced accelerator rows, which its optimizer combines
  itself; skyd's catalog is built from the same rows.
- `GpuInfo` is rebuilt only where the reference kept it (GCP GPU memory, TPU names); the
  optimizer does not read it to place a task.
- Files written by hand have no `.meta/*.md5`, which SkyPilot takes as "edited by the user"
  and never re-downloads (sky/catalog/common.py, `is_catalog_modified`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

SCHEMA_VERSION = "v8"  # sky.skylet.constants.CATALOG_SCHEMA_VERSION in 0.14.1
# Each cloud's header exactly as in SkyPilot's catalog (../shared/data/README.md, "Source
# header"): Azure and Lambda have no AvailabilityZone column, and SkyPilot drops rows whose
# zone is empty when the column exists.
HEADERS = {
    "aws": "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,"
    "GpuInfo,Price,SpotPrice,Region,AvailabilityZone",
    "gcp": "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,"
    "GpuInfo,Region,AvailabilityZone,Price,SpotPrice",
    "azure": "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,"
    "GpuInfo,Price,SpotPrice,Region,Generation",
    "lambda": "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,"
    "MemoryGiB,Price,Region,GpuInfo,SpotPrice",
}
# SkyPilot column → the reference catalog's column
COLUMNS = {
    "InstanceType": "instance_type",
    "AcceleratorName": "accelerator_name",
    "AcceleratorCount": "accelerator_count",
    "vCPUs": "vcpus",
    "MemoryGiB": "memory_gib",
    "Price": "price",
    "SpotPrice": "spot_price",
    "Region": "region",
    "AvailabilityZone": "zone",
    "Generation": "generation",
}
CLOUD_NAMES = {"aws": "AWS", "gcp": "GCP", "azure": "Azure", "lambda": "Lambda"}
REPO = Path(__file__).resolve().parent.parent


def sources(reference: Path) -> dict[str, Path]:
    """Where each cloud's rows come from (see the module docstring for why)."""
    return {
        "aws": REPO / "catalogs" / "aws.csv",
        "gcp": reference / "gcp.csv",
        "azure": reference / "azure.csv",
        "lambda": reference / "lambda.csv",
    }


def _gpu_info(cloud: str, row: dict[str, str]) -> str:
    if cloud != "gcp":
        return ""
    if row.get("gpu_memory_mib"):
        return str({"Gpus": [{"MemoryInfo": {"SizeInMiB": int(row["gpu_memory_mib"])}}]})
    if row["accelerator_name"].startswith("tpu"):
        return row["accelerator_name"]
    return ""


def _write(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def seed(home: Path, reference: Path) -> dict[str, int]:
    """Write SkyPilot's catalog files under `home`; returns the rows written per cloud."""
    root = home / ".sky" / "catalogs" / SCHEMA_VERSION
    counts: dict[str, int] = {}
    clouds_of: dict[str, set[str]] = {}
    memory_gb: dict[str, int] = {}
    for cloud, source in sources(reference).items():
        with source.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        header = HEADERS[cloud].split(",")
        out_rows = []
        for row in rows:
            out_rows.append(
                [
                    _gpu_info(cloud, row) if column == "GpuInfo" else row[COLUMNS[column]]
                    for column in header
                ]
            )
            name = row["accelerator_name"]
            if name:
                clouds_of.setdefault(name, set()).add(CLOUD_NAMES[cloud])
                if row.get("gpu_memory_mib"):
                    memory_gb[name] = int(row["gpu_memory_mib"]) // 1024
        _write(root / cloud / "vms.csv", header, out_rows)
        counts[cloud] = len(out_rows)
    # What SkyPilot canonicalizes accelerator names against, and GPU memory by name.
    _write(
        root / "common" / "accelerators.csv",
        ["AcceleratorName", "Clouds"],
        ([name, str(sorted(clouds))] for name, clouds in sorted(clouds_of.items())),
    )
    _write(
        root / "common" / "metadata.csv",
        ["GPU", "Manufacturer", "MemoryGB"],
        ([name, "NVIDIA", str(gb)] for name, gb in sorted(memory_gb.items())),
    )
    return counts
