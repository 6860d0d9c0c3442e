"""catalogs/build.py reproduces the committed catalogs exactly from the reference data."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import skyd

REPO = Path(skyd.__file__).resolve().parents[1]
# the shared reference data lies beside the checkout (../shared), as in CI
SOURCE = REPO.parent / "shared" / "data" / "catalog"

pytestmark = pytest.mark.skipif(
    not (SOURCE / "gcp.csv").is_file(), reason=f"reference data not present in {SOURCE}"
)


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalog_build", REPO / "catalogs" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_build_reproduces_committed_files(build: ModuleType) -> None:
    files = build.build_all(SOURCE)
    assert set(files) == {"aws.csv", "gcp.csv", "azure.csv", "lambda.csv", "regions.csv"}
    for name, content in files.items():
        committed = (REPO / "catalogs" / name).read_text(encoding="utf-8")
        assert content == committed, f"catalogs/{name} differs from what build.py produces"
    assert build.build_all(SOURCE) == files  # deterministic


def test_build_script_runs_as_a_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "catalogs" / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "gcp.csv" in result.stdout
    for name in ("aws.csv", "gcp.csv", "azure.csv", "lambda.csv", "regions.csv"):
        assert (tmp_path / name).read_bytes() == (REPO / "catalogs" / name).read_bytes()


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_gcp_gpu_offers_are_host_plus_accelerator(build: ModuleType) -> None:
    from decimal import Decimal

    source = read(SOURCE / "gcp.csv")
    hosts = {(r["instance_type"], r["zone"]): r for r in source if r["row_kind"] == "vm"}
    accels = {
        (r["accelerator_name"], r["accelerator_count"], r["zone"]): r
        for r in source
        if r["row_kind"] == "accelerator"
    }
    shipped = read(REPO / "catalogs" / "gcp.csv")
    checked = 0
    for row in shipped:
        if not row["accelerator_name"]:
            continue
        host = hosts[(row["instance_type"].split("+")[0], row["zone"])]
        accel = accels[(row["accelerator_name"], row["accelerator_count"], row["zone"])]
        assert Decimal(row["price"]) == Decimal(host["price"]) + Decimal(accel["price"])
        if host["spot_price"] and accel["spot_price"]:
            expected = Decimal(host["spot_price"]) + Decimal(accel["spot_price"])
            assert Decimal(row["spot_price"]) == expected
        else:
            assert row["spot_price"] == ""
        assert (row["vcpus"], row["memory_gib"]) == (host["vcpus"], host["memory_gib"])
        checked += 1
    assert checked > 1000


def test_no_placeholder_or_tpu_rows_ship() -> None:
    for cloud in ("aws", "gcp", "azure", "lambda"):
        for row in read(REPO / "catalogs" / f"{cloud}.csv"):
            assert row["price"] != "700.0" and not row["accelerator_name"].startswith("tpu-")
            assert row["price"] or row["spot_price"]
