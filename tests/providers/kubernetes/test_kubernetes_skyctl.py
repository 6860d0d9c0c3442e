"""`skyctl check`, `skyctl prices` and `skyctl optimize` show the lab's Kubernetes context
beside the clouds, with why each was or was not chosen (the fake Kubernetes cluster)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skyd.testing.daemon import DaemonThread, daemon_thread, settings_for_tests
from skyd.testing.fake_kube.server import FakeKubeServer
from tests.daemon_calls import run_skyctl
from tests.providers.kubernetes.kube_world import CONTEXT

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def daemon(tmp_path: Path, cluster: FakeKubeServer) -> AsyncIterator[DaemonThread]:
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.kubernetes = {"enabled": True, "contexts": [CONTEXT]}
    async with daemon_thread(settings) as thread:
        yield thread


async def run(daemon: DaemonThread, *args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(run_skyctl, str(daemon.socket_path), *args)


async def test_check_prices_and_optimize_show_the_context_beside_the_clouds(
    daemon: DaemonThread, tmp_path: Path
) -> None:
    code, out, _ = await run(daemon, "check")
    lines = out.splitlines()
    assert code == 0 and [line.split(":")[0] for line in lines if not line.startswith(" ")] == [
        "aws",
        "gcp",
        "azure",
        "kubernetes",
    ]
    assert f"kubernetes: enabled — context {CONTEXT}: 3 ready node(s), 4 GPU(s)" in lines
    code, out, _ = await run(daemon, "prices", "--gpu", "A100", "--json")
    rows = json.loads(out)
    assert code == 0 and {"kubernetes", "gcp", "aws"} <= {r["cloud"] for r in rows}
    [lab] = [r for r in rows if r["cloud"] == "kubernetes" and r["accelerator_count"] == 1]
    assert lab["region"] == CONTEXT and lab["price"] == 0.0
    # a 2-node gang fits the context's two GPU nodes, at the lab's internal price
    gang = tmp_path / "gang.yaml"
    gang.write_text("num_nodes: 2\nresources: {accelerators: A100:1}\nrun: nvidia-smi\n")
    code, out, _ = await run(daemon, "optimize", str(gang), "--json")
    view: dict[str, Any] = json.loads(out)
    assert code == 0 and view["chosen"]["cloud"] == "kubernetes", view["reason"]
    clouds = [c for c in view["candidates"] if c["cloud"] in ("aws", "gcp", "azure")]
    assert clouds and {c["excluded"] for c in clouds} == {"provider_disabled"}
    # three nodes: more than the context has, and it says so
    gang.write_text("num_nodes: 3\nresources: {accelerators: A100:1}\nrun: nvidia-smi\n")
    code, out, _ = await run(daemon, "optimize", str(gang), "--json")
    view = json.loads(out)
    lab_rows = [c for c in view["candidates"] if c["cloud"] == "kubernetes"]
    assert view["chosen"] is None and lab_rows, view
    assert {c["excluded"] for c in lab_rows} == {"too_few_nodes"}, lab_rows
