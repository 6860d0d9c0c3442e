"""Combine GCP machine types, accelerator types and unit prices into catalog rows.

The combination, matching the shipped catalog (catalogs/build.py):
- A machine type price is its family's vCPU price × vCPUs + GiB price × memory
  in the zone's region; spot uses the Preemptible unit prices.
- Machine types that come with GPUs (a2, a3, g2, … — Compute Engine lists them in
  the type's `accelerators`) are one offering: host price + GPU price × count.
- N1 types can have GPUs attached. Each (N1 type, attachable GPU, count) allowed
  by Google's per-count vCPU limit below, in a zone that offers that GPU, is an
  offering named `<type>+<GPU>x<count>` (skyd.catalog.instance_types) priced host
  + GPU × count.
- Every other machine type without GPUs is a CPU-only offering.
A price is left empty when any of its parts has no SKU for the region; a row with
neither price is dropped. TPUs are not fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from skyd.catalog.fetch.gcp_skus import GcpPriceBook
from skyd.catalog.fetch.rows import CatalogRow
from skyd.catalog.instance_types import GCE_ATTACHED_GPU_SEPARATOR

# Compute Engine accelerator type → the name skyd catalogs use.
ACCELERATOR_NAMES = {
    "nvidia-tesla-k80": "K80",
    "nvidia-tesla-p4": "P4",
    "nvidia-tesla-p100": "P100",
    "nvidia-tesla-t4": "T4",
    "nvidia-tesla-v100": "V100",
    "nvidia-tesla-a100": "A100",
    "nvidia-a100-80gb": "A100-80GB",
    "nvidia-l4": "L4",
    "nvidia-h100-80gb": "H100",
    "nvidia-h100-mega-80gb": "H100-MEGA",
    "nvidia-h200-141gb": "H200",
    "nvidia-b200": "B200",
}

# Most vCPUs an N1 host may have with this many of these GPUs attached (Google's
# GPU documentation, N1 section; for P100 ×4 the smaller of its two zone limits).
N1_GPU_VCPU_LIMITS: dict[tuple[str, int], int] = {
    ("nvidia-tesla-t4", 1): 48,
    ("nvidia-tesla-t4", 2): 48,
    ("nvidia-tesla-t4", 4): 96,
    ("nvidia-tesla-p4", 1): 24,
    ("nvidia-tesla-p4", 2): 48,
    ("nvidia-tesla-p4", 4): 96,
    ("nvidia-tesla-v100", 1): 12,
    ("nvidia-tesla-v100", 2): 24,
    ("nvidia-tesla-v100", 4): 48,
    ("nvidia-tesla-v100", 8): 96,
    ("nvidia-tesla-p100", 1): 16,
    ("nvidia-tesla-p100", 2): 32,
    ("nvidia-tesla-p100", 4): 64,
    ("nvidia-tesla-k80", 1): 8,
    ("nvidia-tesla-k80", 2): 16,
    ("nvidia-tesla-k80", 4): 32,
    ("nvidia-tesla-k80", 8): 64,
}


def accelerator_name(accelerator_type: str) -> str:
    """Catalog name of a Compute Engine accelerator type; unknown ones upper-cased."""
    known = ACCELERATOR_NAMES.get(accelerator_type)
    if known is not None:
        return known
    return accelerator_type.removeprefix("nvidia-").removeprefix("tesla-").upper()


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


@dataclass(frozen=True)
class MachineType:
    name: str
    zone: str
    vcpus: Decimal
    memory_gib: Decimal
    # (accelerator type, count) the machine type always comes with.
    accelerators: tuple[tuple[str, int], ...] = ()

    @property
    def family(self) -> str:
        return self.name.split("-", 1)[0]


@dataclass(frozen=True)
class AcceleratorType:
    name: str
    zone: str
    max_per_instance: int


def gcp_rows(
    machine_types: Iterable[MachineType],
    accelerator_types: Iterable[AcceleratorType],
    book: GcpPriceBook,
) -> list[CatalogRow]:
    attachable: dict[str, list[AcceleratorType]] = {}
    for accelerator in accelerator_types:
        attachable.setdefault(accelerator.zone, []).append(accelerator)
    prices = _PriceLookup(book)
    rows: list[CatalogRow] = []
    for machine in machine_types:
        if machine.accelerators:
            gpu_type, count = machine.accelerators[0]
            rows.extend(_offering(machine, machine.name, gpu_type, count, prices))
            continue
        rows.extend(_offering(machine, machine.name, None, 0, prices))
        if machine.family != "n1":
            continue
        for accelerator in attachable.get(machine.zone, ()):
            for count in (1, 2, 4, 8):
                limit = N1_GPU_VCPU_LIMITS.get((accelerator.name, count))
                if count > accelerator.max_per_instance or limit is None:
                    continue
                if machine.vcpus > limit:
                    continue
                name = (
                    f"{machine.name}{GCE_ATTACHED_GPU_SEPARATOR}"
                    f"{accelerator_name(accelerator.name)}x{count}"
                )
                rows.extend(_offering(machine, name, accelerator.name, count, prices))
    return rows


class _PriceLookup:
    """The price book, memoized per machine and GPU type: N1 hosts repeat in many rows."""

    def __init__(self, book: GcpPriceBook) -> None:
        self._book = book
        self._hosts: dict[tuple[str, str, bool], Decimal | None] = {}
        self._gpus: dict[tuple[str, str, bool], Decimal | None] = {}

    def host(self, machine: MachineType, spot: bool) -> Decimal | None:
        key = (machine.name, machine.zone, spot)
        if key not in self._hosts:
            self._hosts[key] = self._book.host_price(
                machine.family, region_of(machine.zone), spot, machine.vcpus, machine.memory_gib
            )
        return self._hosts[key]

    def gpu(self, accelerator_type: str, region: str, spot: bool) -> Decimal | None:
        key = (accelerator_type, region, spot)
        if key not in self._gpus:
            self._gpus[key] = self._book.gpu_price(accelerator_type, region, spot)
        return self._gpus[key]


def _offering(
    machine: MachineType,
    instance_type: str,
    gpu_type: str | None,
    count: int,
    prices: _PriceLookup,
) -> list[CatalogRow]:
    region = region_of(machine.zone)
    on_demand, spot = (_price(machine, gpu_type, count, prices, region, s) for s in (False, True))
    if on_demand is None and spot is None:
        return []
    return [
        CatalogRow(
            cloud="gcp",
            instance_type=instance_type,
            accelerator_name=accelerator_name(gpu_type) if gpu_type else "",
            accelerator_count=count if gpu_type else None,
            vcpus=machine.vcpus,
            memory_gib=machine.memory_gib,
            price=on_demand,
            spot_price=spot,
            region=region,
            zone=machine.zone,
        )
    ]


def _price(
    machine: MachineType,
    gpu_type: str | None,
    count: int,
    prices: _PriceLookup,
    region: str,
    spot: bool,
) -> Decimal | None:
    host = prices.host(machine, spot)
    if host is None or gpu_type is None:
        return host
    unit = prices.gpu(gpu_type, region, spot)
    return None if unit is None else host + unit * count
