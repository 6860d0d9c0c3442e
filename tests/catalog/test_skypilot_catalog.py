"""bench.skypilot_catalog writes SkyPilot's own catalog layout from the reference rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench import skypilot_catalog

REFERENCE = Path(skypilot_catalog.REPO).parent / "shared" / "data" / "catalog"

pytestmark = pytest.mark.skipif(
    not (REFERENCE / "gcp.csv").is_file(), reason=f"reference data not present in {REFERENCE}"
)


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_each_cloud_gets_its_own_header_and_every_row(tmp_path: Path) -> None:
    counts = skypilot_catalog.seed(tmp_path, REFERENCE)
    root = tmp_path / ".sky" / "catalogs" / "v8"
    for cloud, source in skypilot_catalog.sources(REFERENCE).items():
        header, rows = _read(root / cloud / "vms.csv")
        assert header == skypilot_catalog.HEADERS[cloud].split(",")
        with source.open(newline="") as handle:
            assert len(rows) == counts[cloud] == sum(1 for _ in csv.DictReader(handle))
    # SkyPilot drops every row whose zone is empty when the column exists, so clouds whose
    # source has no zones must not have the column at all.
    for cloud in ("azure", "lambda"):
        assert "AvailabilityZone" not in _read(root / cloud / "vms.csv")[0]


def test_values_are_carried_unchanged(tmp_path: Path) -> None:
    skypilot_catalog.seed(tmp_path, REFERENCE)
    root = tmp_path / ".sky" / "catalogs" / "v8"
    _, gcp = _read(root / "gcp" / "vms.csv")
    t4 = next(r for r in gcp if r["AcceleratorName"] == "T4" and r["InstanceType"] == "")
    assert t4["GpuInfo"] == str({"Gpus": [{"MemoryInfo": {"SizeInMiB": 16384}}]})
    _, aws = _read(root / "aws" / "vms.csv")
    # skyd's shipped AWS rows, with the derived c5/m5/r5 sizes, so both sides see them
    assert any(r["InstanceType"] == "c5.2xlarge" for r in aws)
    _, azure = _read(root / "azure" / "vms.csv")
    assert {r["Generation"] for r in azure} >= {"V1,V2"}
    _, accelerators = _read(root / "common" / "accelerators.csv")
    v100 = next(r for r in accelerators if r["AcceleratorName"] == "V100")
    assert "AWS" in v100["Clouds"] and "GCP" in v100["Clouds"]
