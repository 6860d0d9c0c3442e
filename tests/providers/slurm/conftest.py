"""Fixtures of the Slurm tests that need the real test cluster: started once per module and
held by one test run at a time (`pytestmark = pytest.mark.usefixtures("slurm_cluster")`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slurm_world import cluster_to_myself, ensure_cluster


@pytest.fixture(scope="module")
def slurm_started() -> None:
    ensure_cluster()


@pytest.fixture
def slurm_cluster(slurm_started: None) -> Iterator[None]:
    with cluster_to_myself():
        yield
