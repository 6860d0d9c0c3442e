"""Fixtures of the Slurm tests: the real test cluster, started per module, held by one run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.slurm.slurm_world import cluster_to_myself, ensure_cluster


@pytest.fixture(scope="module")
def slurm_started() -> None:
    ensure_cluster()


@pytest.fixture
def slurm_cluster(slurm_started: None) -> Iterator[None]:
    """The cluster, to this test alone: `pytestmark = pytest.mark.usefixtures("slurm_cluster")`."""
    with cluster_to_myself():
        yield
