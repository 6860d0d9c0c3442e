"""Accelerator name normalization and "did you mean" errors."""

from __future__ import annotations

import pytest

from skyd.catalog import Catalog
from skyd.catalog.names import AcceleratorNames
from skyd.errors import CatalogError, UnknownAcceleratorError


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("a100-80gb", "A100-80GB"),
        ("A100-80GB", "A100-80GB"),
        ("a100_80gb", "A100-80GB"),
        (" h100 ", "H100"),
        ("h100-mega", "H100-MEGA"),
        ("t4g", "T4g"),
        ("T4", "T4"),
        ("gaudi hl-205", "Gaudi HL-205"),
        ("rtx6000", "RTX6000"),
    ],
)
def test_normalize_accepts_case_and_separator_variants(
    catalog: Catalog, written: str, canonical: str
) -> None:
    assert catalog.normalize_accelerator(written) == canonical


def test_unknown_name_suggests_close_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownAcceleratorError) as caught:
        catalog.normalize_accelerator("A10O")
    message = str(caught.value)
    assert "'A10O'" in message and "did you mean" in message and "'A100'" in message
    assert caught.value.code == "unknown_accelerator"
    assert isinstance(caught.value, CatalogError)


def test_unknown_name_without_neighbours_lists_known_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownAcceleratorError, match=r"known accelerators: .*H100"):
        catalog.normalize_accelerator("zzzzzzzzzz")


def test_empty_name_is_rejected(catalog: Catalog) -> None:
    with pytest.raises(UnknownAcceleratorError, match="empty"):
        catalog.normalize_accelerator("  ")


def test_names_are_canonical_and_sorted(catalog: Catalog) -> None:
    names = catalog.accelerator_names()
    assert names == sorted(names, key=str.casefold)
    assert {"A100", "A100-80GB", "H100", "H100-MEGA", "L4", "T4", "Trainium2"} <= set(names)
    assert "" not in names
    assert not any(name.startswith("tpu-") for name in names)  # TPUs are not shipped


def test_names_differing_only_by_separators_stay_exact() -> None:
    names = AcceleratorNames(["X-1", "X1"])
    assert names.normalize("x-1") == "X-1"
    assert names.normalize("x1") == "X1"
    assert names.lookup("x_1") is None
