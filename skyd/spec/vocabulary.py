"""The names a task file may use (clouds, regions, zones, instance types, accelerators) and
"did you mean" for the ones nobody knows.

Two sources: SkyPilot's own vocabulary (clouds and accelerator names it accepts, kept here
so a file written for SkyPilot is not refused for naming a cloud skyd has no provider for),
and the catalogs skyd loaded (what can actually be placed). A name SkyPilot knows but no
catalog offers is accepted and simply has no offering; a name nobody knows is a mistake.
"""

from __future__ import annotations

import difflib
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Clouds skyd has providers or catalogs for, then the other infra names SkyPilot accepts
# (from SkyPilot's documented `infra:` values; provenance: skypilot-org/skypilot
# docs/source/reference/yaml-spec.rst and sky/clouds/, Apache-2.0).
SKYD_CLOUDS = ("aws", "gcp", "azure", "lambda", "local", "sim", "ssh")
SKYPILOT_ONLY_CLOUDS = (
    "kubernetes",
    "k8s",
    "slurm",
    "runpod",
    "paperspace",
    "fluidstack",
    "cudo",
    "do",
    "ibm",
    "oci",
    "scp",
    "vast",
    "vsphere",
    "nebius",
    "hyperbolic",
    "seeweb",
    "primeintellect",
    "shadeform",
    "coreweave",
    "together",
)
ALL_CLOUDS = (*SKYD_CLOUDS, *SKYPILOT_ONLY_CLOUDS)

# Spellings SkyPilot users write for the catalogs' accelerator names.
ACCELERATOR_ALIASES = {
    "a100-40gb": "A100",
    "a100-40g": "A100",
    "a100-80g": "A100-80GB",
    "a100-sxm4-80gb": "A100-80GB",
    "h100-sxm": "H100",
    "h100-sxm5": "H100",
    "h100-80gb": "H100",
    "v100-16gb": "V100",
    "v100-32g": "V100-32GB",
    "a10g-24gb": "A10G",
}

# Accelerators SkyPilot knows that no shipped catalog offers (TPUs, AMD, other NVIDIA
# parts): accepted, and placed nowhere until a catalog offers them.
SKYPILOT_ACCELERATORS = (
    "A40",
    "L40",
    "L4-24GB",
    "RTX3090",
    "RTX4090",
    "RTXA4000",
    "RTXA5000",
    "RTXA6000",
    "H100-80GB-HBM3",
    "H200-SXM",
    "B200",
    "GB200",
    "MI100",
    "MI210",
    "MI250",
    "MI300X",
    "MI325X",
    "tpu-v2-8",
    "tpu-v3-8",
    "tpu-v4-8",
    "tpu-v5e-1",
    "tpu-v5e-4",
    "tpu-v5e-8",
    "tpu-v5p-8",
    "tpu-v6e-8",
)


def suggest(name: str, known: Iterable[str], *, what: str, limit: int = 3) -> str:
    """`did you mean 'x'?`, or the list of known names when nothing is close."""
    folded = {item.casefold(): item for item in known}
    close = difflib.get_close_matches(name.casefold(), folded, n=limit, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(folded[c]) for c in close) + "?"
    names = sorted(folded.values())
    shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
    return f"known {what}: {shown}" if names else f"no {what} are known"


CATALOG_NOTE = " (from skyd's catalogs; `skyd catalog fetch CLOUD` refreshes them)"


class OfferLike(Protocol):
    @property
    def cloud(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def zone(self) -> str: ...
    @property
    def instance_type(self) -> str: ...
    @property
    def accelerator_name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the loaded catalogs offer, by cloud; built once per catalog."""

    regions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    zones: Mapping[str, frozenset[str]] = field(default_factory=dict)
    instance_types: Mapping[str, frozenset[str]] = field(default_factory=dict)
    accelerators: frozenset[str] = frozenset()

    @classmethod
    def from_offers(cls, offers: Iterable[OfferLike]) -> Vocabulary:
        regions: dict[str, set[str]] = {}
        zones: dict[str, set[str]] = {}
        types: dict[str, set[str]] = {}
        accelerators: set[str] = set()
        for offer in offers:
            regions.setdefault(offer.cloud, set()).add(offer.region)
            if offer.zone:
                zones.setdefault(offer.cloud, set()).add(offer.zone)
            types.setdefault(offer.cloud, set()).add(offer.instance_type)
            if offer.accelerator_name:
                accelerators.add(offer.accelerator_name)
        return cls(
            regions={k: frozenset(v) for k, v in regions.items()},
            zones={k: frozenset(v) for k, v in zones.items()},
            instance_types={k: frozenset(v) for k, v in types.items()},
            accelerators=frozenset(accelerators),
        )

    def _known(self, table: Mapping[str, frozenset[str]], cloud: str | None) -> frozenset[str]:
        if cloud is not None:
            return table.get(cloud, frozenset())
        return frozenset(name for names in table.values() for name in names)

    def _covers(self, table: Mapping[str, frozenset[str]], cloud: str | None) -> bool:
        # Only a cloud whose catalog is loaded can say a name is wrong.
        return bool(table) if cloud is None else cloud in table

    def region_problem(self, region: str, cloud: str | None) -> str | None:
        if not self._covers(self.regions, cloud) or region in self._known(self.regions, cloud):
            return None
        where = f" on {cloud}" if cloud else ""
        return (
            f"{region!r} is not a region skyd knows{where}; "
            f"{suggest(region, self._known(self.regions, cloud), what='regions')}{CATALOG_NOTE}"
        )

    def zone_problem(self, zone: str, cloud: str | None) -> str | None:
        if not self._covers(self.zones, cloud) or zone in self._known(self.zones, cloud):
            return None
        where = f" on {cloud}" if cloud else ""
        return (
            f"{zone!r} is not a zone skyd knows{where}; "
            f"{suggest(zone, self._known(self.zones, cloud), what='zones')}{CATALOG_NOTE}"
        )

    def instance_type_problem(self, name: str, cloud: str | None) -> str | None:
        known = self._known(self.instance_types, cloud)
        if not self._covers(self.instance_types, cloud) or name in known:
            return None
        where = f" on {cloud}" if cloud else ""
        return (
            f"{name!r} is not an instance type skyd knows{where}; "
            f"{suggest(name, known, what='instance types')}{CATALOG_NOTE}"
        )

    def accelerator(self, name: str) -> tuple[str, str | None]:
        """The catalog's spelling of `name` and, for a name nobody knows, the problem."""
        alias = ACCELERATOR_ALIASES.get(name.casefold())
        if alias is not None:
            return alias, None
        for known in self.accelerators:
            if _loose(known) == _loose(name):
                return known, None
        for known in SKYPILOT_ACCELERATORS:
            if _loose(known) == _loose(name):
                return known, None
        if not self.accelerators:
            return name, None
        every = (*self.accelerators, *SKYPILOT_ACCELERATORS, *ACCELERATOR_ALIASES.values())
        return name, (
            f"unknown accelerator {name!r}; {suggest(name, set(every), what='accelerators')}"
        )


def is_skypilot_accelerator(name: str) -> bool:
    """A name SkyPilot accepts that no shipped catalog offers (placed nowhere, not a typo)."""
    return any(_loose(known) == _loose(name) for known in SKYPILOT_ACCELERATORS)


def _loose(name: str) -> str:
    return name.replace("-", "").replace("_", "").replace(" ", "").casefold()


def cloud_problem(value: str) -> str | None:
    if value in ALL_CLOUDS:
        return None
    hint = suggest(value, ALL_CLOUDS, what="clouds")
    return f"{value!r} is not a cloud skyd or SkyPilot knows; {hint}"


class HasOffers(Protocol):
    @property
    def offers(self) -> Iterable[OfferLike]: ...


_BUILT: weakref.WeakKeyDictionary[Any, Vocabulary] = weakref.WeakKeyDictionary()


def vocabulary_of(catalog: HasOffers) -> Vocabulary:
    """The vocabulary of a catalog, built once per catalog object (catalogs never change)."""
    found = _BUILT.get(catalog)
    if found is None:
        found = _BUILT[catalog] = Vocabulary.from_offers(catalog.offers)
    return found
