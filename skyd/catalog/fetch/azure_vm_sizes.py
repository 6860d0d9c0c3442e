"""The shipped table of Azure VM sizes: vCPUs, memory and GPUs, which the Retail Prices API lacks.

`azure_vm_sizes.csv` holds the sizes of skyd's shipped Azure catalog (values from
the public skypilot-catalog v6 Azure file, see /work/shared/data/README.md §2.3),
with one correction: Standard_ND96isr_H100_v5 has 8 H100s, as Azure's size
documentation states, not the 12 of that source. Sizes missing here are left out
of a fetched catalog (and counted in the log); add a row to fetch them. The ARM
Resource SKUs API would know every size but needs a subscription and credentials,
which the unauthenticated price fetch is meant to avoid.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from skyd.errors import CatalogError


@dataclass(frozen=True)
class AzureVmSize:
    accelerator_name: str
    accelerator_count: int | None
    vcpus: Decimal
    memory_gib: Decimal


def shipped_vm_sizes() -> dict[str, AzureVmSize]:
    """armSkuName → size, read from the table that ships inside this package."""
    text = resources.files(__package__).joinpath("azure_vm_sizes.csv").read_text("utf-8")
    return parse_vm_sizes(text, "azure_vm_sizes.csv")


def parse_vm_sizes(text: str, where: str) -> dict[str, AzureVmSize]:
    sizes: dict[str, AzureVmSize] = {}
    for line, record in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            count = record["accelerator_count"]
            sizes[record["instance_type"]] = AzureVmSize(
                accelerator_name=record["accelerator_name"],
                accelerator_count=int(count) if count else None,
                vcpus=Decimal(record["vcpus"]),
                memory_gib=Decimal(record["memory_gib"]),
            )
        except (KeyError, ArithmeticError, ValueError) as exc:
            raise CatalogError(f"{where} line {line}: bad VM size row {record}: {exc}") from None
    return sizes
