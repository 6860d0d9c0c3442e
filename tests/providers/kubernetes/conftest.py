"""Fixtures of the Kubernetes tests: the fake cluster, reached through $KUBECONFIG."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyd.testing.fake_kube.server import FakeKubeServer
from tests.providers.kubernetes.kube_world import CONTEXT, start_cluster


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKubeServer]:
    server = await start_cluster(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig", CONTEXT)))
    yield server
    await server.aclose()
